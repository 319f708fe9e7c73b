import { PackError } from '../../common/errors.js';
import { DIGEST_PIN, digestFor, packDigest } from '../format/hash.js';
import {
  readCapped,
  type PackRef,
  type PackResolver,
  type ResolveContext,
  type ResolvedPack,
} from './pack-resolver.js';

/**
 * `https:` / `http:` — a `.gtpack` at a URL, pinned by digest in the bundle. The pin makes the
 * content immutable, so it is fetched once and then served from the cache (re-verified).
 */
export class HttpResolver implements PackResolver {
  readonly schemes = ['https', 'http'] as const;

  constructor(private readonly timeoutMs = 30_000) {}

  async resolve(ref: PackRef, ctx: ResolveContext): Promise<ResolvedPack> {
    const pin = ref.digest?.toLowerCase();
    if (!pin || !DIGEST_PIN.test(pin)) {
      throw new PackError(
        'pack_digest_pin_required',
        `pack '${ref.id}' (${ref.source}): a remote pack needs a digest pin in the bundle ('digest: sha256:<64 hex>')`,
      );
    }
    const cached = await ctx.cache.get(pin);
    if (cached)
      return {
        kind: 'archive',
        bytes: cached,
        digest: packDigest(cached),
        location: ref.source,
        fromCache: true,
      };
    let res: Response;
    try {
      res = await fetch(ref.source, { signal: AbortSignal.timeout(this.timeoutMs), redirect: 'follow' });
    } catch (e) {
      throw new PackError('pack_fetch_failed', `${ref.source}: ${(e as Error).message}`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new PackError('pack_fetch_failed', `${ref.source}: HTTP ${res.status}`);
    }
    const bytes = await readCapped(
      res,
      ctx.limits.maxArchiveBytes,
      ref.source,
      (m) => new PackError('pack_archive_too_large', m),
    );
    const actual = digestFor(pin, bytes);
    if (actual !== pin) {
      throw new PackError(
        'pack_digest_mismatch',
        `${ref.source}: content is ${actual}, the bundle pins ${pin}`,
        { expected: pin, actual },
      );
    }
    await ctx.cache.put(pin, bytes);
    return { kind: 'archive', bytes, digest: packDigest(bytes), location: ref.source, fromCache: false };
  }

  async probe(ref: PackRef): Promise<string | undefined> {
    return ref.digest ? `pin:${ref.digest}` : undefined;
  }
}
