import { PackError } from '../../common/errors.js';
import type { PackBinding } from '../../tenancy/bundle.types.js';
import type { ComponentSpec } from '../../core/component-runtime.js';
import type { ArchiveLimits } from '../format/constants.js';
import type { PackContents, PackFlowFile, PackSource } from '../pack-source.js';
import type { PackCache } from '../resolvers/pack-cache.js';
import {
  schemeOf,
  type PackRef,
  type PackResolver,
  type ResolveContext,
} from '../resolvers/pack-resolver.js';
import { openAnyPack, type OpenedPack } from '../verify/open-any-pack.js';
import type { VerifiedPackV1 } from '../verify/pack-v1-verifier.js';
import type { VerifiedPack } from '../verify/pack-verifier.js';
import type { TrustPolicy } from '../verify/trust.js';
import { DirectoryPackSource } from './directory-pack.source.js';

export interface GtpackSourceOptions {
  /** The resolvers (built-in and discovered), read on each load so late registrations count. */
  resolvers: () => readonly PackResolver[];
  policy: () => TrustPolicy;
  cache: PackCache;
  limits: ArchiveLimits;
}

/** Verified archive → what the registry loads. */
export function contentsOf(v: VerifiedPack, digest: string, location: string): PackContents {
  const text = (p: string): string => new TextDecoder().decode(v.files.get(p)!);
  const flows: PackFlowFile[] = v.manifest.flows.map((f) => ({
    id: f.id,
    path: `${location}!/${f.file_yaml}`,
    text: text(f.file_yaml),
  }));
  const components: ComponentSpec[] = v.manifest.components.map((c) => ({
    name: c.name,
    version: c.version,
    bytes: v.files.get(c.file_wasm)!,
  }));
  const assets = new Map<string, Uint8Array>();
  for (const [p, bytes] of v.files) if (p.startsWith('assets/')) assets.set(p, bytes);
  return {
    id: v.manifest.meta.pack_id,
    version: v.manifest.meta.version,
    digest,
    flows,
    components,
    assets,
    signer: v.signature.signer,
    warnings: v.signature.warnings,
    location,
    format: 'legacy',
  };
}

/** `assets/.../i18n/<locale>.json` or a top-level `i18n/<locale>.json` (upstream copies extra dirs as-is). */
const I18N_FILE = /^(?:assets\/(?:.+\/)?i18n|i18n)\/[^/]+\.json$/;

/**
 * Verified pack-v1 archive → what the registry loads: the flow-v1 flows, every bundled component's wasm
 * named by its component id, assets (and the i18n files among them), the default messaging entrypoint.
 * `.ygtc` sources fill `flows` when the manifest pins their sha256 (packs built here).
 */
export function contentsOfV1(v: VerifiedPackV1, digest: string, location: string): PackContents {
  const m = v.manifest;
  const flows: PackFlowFile[] = [];
  for (const f of m.flows) {
    const p = `flows/${f.id}/flow.ygtc`;
    const bytes = v.files.get(p);
    // Only a source the manifest pins: an unpinned one (upstream `--dev` builds) is covered by the unsigned
    // SBOM alone, so its flow-v1 IR in the manifest is what runs.
    if (bytes && v.pinnedFiles.has(p))
      flows.push({ id: f.id, path: `${location}!/${p}`, text: new TextDecoder().decode(bytes) });
  }
  const components: ComponentSpec[] = [...v.components.values()].map((c) => ({
    name: c.id,
    version: c.version,
    bytes: c.bytes,
  }));
  const assets = new Map<string, Uint8Array>();
  const i18n = new Map<string, Uint8Array>();
  for (const [p, bytes] of v.files) {
    if (p.startsWith('assets/')) assets.set(p, bytes);
    if (I18N_FILE.test(p)) i18n.set(p, bytes);
  }
  return {
    id: m.pack_id,
    version: m.version,
    digest,
    flows,
    components,
    assets,
    ...(v.signature.signer ? { signer: v.signature.signer } : {}),
    warnings: v.warnings,
    location,
    format: 'pack-v1',
    flowsV1: v.runnableFlows,
    i18n,
    ...(v.defaultEntrypoint ? { defaultEntrypoint: v.defaultEntrypoint } : {}),
  };
}

/** An opened archive of either layout → what the registry loads. */
export function contentsOfOpened(opened: OpenedPack, digest: string, location: string): PackContents {
  return opened.format === 'pack-v1'
    ? contentsOfV1(opened.pack, digest, location)
    : contentsOf(opened.pack, digest, location);
}

/**
 * The runner's pack source: a resolver chain by URI scheme (`file:`, `http(s):`, `oci:`, plus any
 * discovered resolver), then full verification of the archive. A `file:` directory is the
 * development form, read by DirectoryPackSource and allowed only under the `dev` policy.
 */
export class GtpackPackSource implements PackSource {
  private readonly dirs = new DirectoryPackSource();

  constructor(private readonly opts: GtpackSourceOptions) {}

  get schemes(): readonly string[] {
    return [...new Set(this.opts.resolvers().flatMap((r) => r.schemes))];
  }

  private resolverFor(source: string): PackResolver {
    const scheme = schemeOf(source);
    const r = this.opts.resolvers().find((x) => x.schemes.includes(scheme));
    if (!r)
      throw new PackError(
        'pack_source_unsupported',
        `no pack resolver handles '${scheme}:' (source '${source}')`,
      );
    return r;
  }

  private ctx(bundleDir: string): ResolveContext {
    return { bundleDir, cache: this.opts.cache, limits: this.opts.limits };
  }

  private ref(b: PackBinding): PackRef {
    return { id: b.id, source: b.source, ...(b.digest ? { digest: b.digest } : {}) };
  }

  async load(binding: PackBinding, bundleDir: string): Promise<PackContents> {
    const resolved = await this.resolverFor(binding.source).resolve(this.ref(binding), this.ctx(bundleDir));
    const policy = this.opts.policy();
    if (resolved.kind === 'directory') {
      if (policy.mode === 'strict') {
        throw new PackError(
          'pack_signature_missing',
          `${resolved.location}: a pack directory is unsigned (development form); the strict trust policy needs a signed .gtpack`,
        );
      }
      return this.dirs.load({ ...binding, source: `file:${resolved.dir}` }, bundleDir);
    }
    const opened = await openAnyPack(resolved.bytes, {
      label: resolved.location,
      policy,
      limits: this.opts.limits,
      expectedId: binding.id,
    });
    return contentsOfOpened(opened, resolved.digest, resolved.location);
  }

  async probe(binding: PackBinding, bundleDir: string): Promise<string | undefined> {
    const r = this.resolverFor(binding.source);
    return r.probe ? r.probe(this.ref(binding), this.ctx(bundleDir)) : undefined;
  }

  watchPaths(binding: PackBinding, bundleDir: string): string[] {
    const r = this.resolverFor(binding.source);
    return r.watchPaths ? r.watchPaths(this.ref(binding), this.ctx(bundleDir)) : [];
  }
}
