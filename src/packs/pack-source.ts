import type { PackBinding } from '../tenancy/bundle.types.js';
import type { FlowV1Entry } from '../flows/flow-v1.js';
import type { ComponentSpec } from '../core/component-runtime.js';

/** A flow file as a pack carries it, before parsing. */
export interface PackFlowFile {
  id: string;
  /** Path shown in errors (`flows/weather_bot/flow.ygtc` or a real file path). */
  path: string;
  text: string;
}

/**
 * What a pack source yields: verified, unpacked contents. The registry parses and validates the
 * flows and prepares the components; nothing of a pack runs before its source has verified it.
 */
export interface PackContents {
  id: string;
  version: string;
  /** Content digest of the pack (`sha256:...`), distinct per version. */
  digest: string;
  flows: PackFlowFile[];
  components: ComponentSpec[];
  assets: Map<string, Uint8Array>;
  /** Key fingerprint of the signer, when signed. */
  signer?: string;
  /** Verification warnings (dev policy: unsigned, unknown key). */
  warnings: string[];
  /** Where it came from, for status output. */
  location: string;
  /** The archive's layout; absent for a pack directory. */
  format?: 'legacy' | 'pack-v1';
  /**
   * pack-v1 only: the manifest's flows in upstream's flow-v1 IR (symbol indexes resolved), in manifest
   * order. `flows` then holds the `.ygtc` sources only when the archive carries them (packs built here).
   * For pack-v1, `components` holds every bundled component's wasm named by its component id.
   */
  flowsV1?: FlowV1Entry[];
  /** pack-v1: i18n string files (`assets/.../i18n/*.json`, `i18n/*.json`) by archive path; also in `assets`. */
  i18n?: Map<string, Uint8Array>;
  /**
   * pack-v1: where a message to this pack starts: the messaging flow tagged `default` (else `main`, else
   * the first messaging flow with nodes) and its `entrypoints.default` node (else its first node).
   * Absent when the pack has no messaging flow with nodes.
   */
  defaultEntrypoint?: { flow: string; node: string };
}

export interface PackSource {
  /** URI schemes this source handles (`file`, `https`, `oci`...). */
  readonly schemes: readonly string[];
  load(binding: PackBinding, bundleDir: string): Promise<PackContents>;
  /**
   * A cheap marker that changes when the pack may have changed (file mtime, OCI tag digest), so
   * the watcher reloads only then. Undefined (or no method): the watcher always reloads.
   */
  probe?(binding: PackBinding, bundleDir: string): Promise<string | undefined>;
  /** Local paths whose filesystem events should trigger a reload. */
  watchPaths?(binding: PackBinding, bundleDir: string): string[];
}

export const PACK_SOURCES = Symbol('PACK_SOURCES');
