import { SetMetadata } from '@nestjs/common';
import type { ArchiveLimits } from '../format/constants.js';
import type { PackCache } from './pack-cache.js';

/** What a bundle says about one pack: its id, where it lives, and an optional digest pin. */
export interface PackRef {
  id: string;
  source: string;
  /** `sha256:<hex>` (or `blake3:<hex>`) of the `.gtpack`; required for HTTP(S). */
  digest?: string;
}

export interface ResolveContext {
  /** Folder of the bundle file: relative `file:` sources resolve against it. */
  bundleDir: string;
  cache: PackCache;
  limits: ArchiveLimits;
}

export type ResolvedPack =
  | {
      kind: 'archive';
      bytes: Uint8Array;
      /** `sha256:<hex>` of the archive. */
      digest: string;
      location: string;
      fromCache: boolean;
    }
  | { kind: 'directory'; dir: string; location: string };

/**
 * Where pack bytes come from. One implementation per URI scheme; the runner's source verifies
 * whatever a resolver returns, so a resolver only fetches (and checks pins it is given). Add one
 * (S3, GCS...) by registering a provider class with `@GreenticPackResolver()` in any module.
 */
export interface PackResolver {
  readonly schemes: readonly string[];
  resolve(ref: PackRef, ctx: ResolveContext): Promise<ResolvedPack>;
  /** A cheap marker that changes when the pack may have changed (watcher); undefined: always resolve. */
  probe?(ref: PackRef, ctx: ResolveContext): Promise<string | undefined>;
  /** Local paths whose filesystem events should trigger a reload. */
  watchPaths?(ref: PackRef, ctx: ResolveContext): string[];
}

export const GREENTIC_PACK_RESOLVER = 'greentic:pack-resolver';

/** Marks a provider as a PackResolver; the packs module discovers it at start-up. */
export const GreenticPackResolver = (): ClassDecorator => SetMetadata(GREENTIC_PACK_RESOLVER, true);

export function schemeOf(source: string): string {
  return /^([a-z][a-z0-9+.-]*):/i.exec(source)?.[1]?.toLowerCase() ?? 'file';
}

/** Reads a response body with a byte cap (a server can lie in or omit Content-Length). */
export async function readCapped(
  res: Response,
  cap: number,
  label: string,
  onTooBig: (msg: string) => Error,
): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > cap)
    throw onTooBig(`${label}: ${declared} bytes, over the ${cap}-byte cap`);
  if (!res.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let n = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > cap) {
      await reader.cancel();
      throw onTooBig(`${label}: body exceeds the ${cap}-byte cap`);
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks, n));
}
