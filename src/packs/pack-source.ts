import type { PackBinding } from '../tenancy/bundle.types.js';
import type { ComponentSpec } from '../wasm/component-runtime.js';

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
