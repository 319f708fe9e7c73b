import { OciClient } from './oci-client.js';
import type { PackRef, PackResolver, ResolveContext, ResolvedPack } from './pack-resolver.js';

/** `oci:` — a pack pushed as an OCI artifact, by tag or by manifest digest. */
export class OciResolver implements PackResolver {
  readonly schemes = ['oci'] as const;

  constructor(private readonly client = new OciClient()) {}

  async resolve(ref: PackRef, ctx: ResolveContext): Promise<ResolvedPack> {
    const pulled = await this.client.pull(ref.source, {
      pin: ref.digest,
      cache: ctx.cache,
      maxBytes: ctx.limits.maxArchiveBytes,
    });
    return {
      kind: 'archive',
      bytes: pulled.bytes,
      digest: pulled.layerDigest,
      location: `${ref.source} (${pulled.manifestDigest})`,
      fromCache: pulled.fromCache,
    };
  }

  /** A tag may move: its manifest digest is the change marker. */
  async probe(ref: PackRef): Promise<string | undefined> {
    return `oci:${await this.client.resolveDigest(ref.source)}`;
  }
}
