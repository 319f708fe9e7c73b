import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { PackError } from '../../common/errors.js';
import { digestFor, packDigest } from '../format/hash.js';
import type { PackRef, PackResolver, ResolveContext, ResolvedPack } from './pack-resolver.js';

/** `file:` path relative to the bundle's folder (or absolute). */
export function filePathOf(source: string, bundleDir: string): string {
  const p = source.startsWith('file://')
    ? source.slice(7)
    : source.startsWith('file:')
      ? source.slice(5)
      : source;
  return path.resolve(bundleDir, p);
}

async function newestMtime(dir: string): Promise<string> {
  let newest = 0;
  let count = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const s = await stat(p);
        newest = Math.max(newest, s.mtimeMs);
        count++;
      }
    }
  };
  await walk(dir);
  return `dir:${count}:${newest}`;
}

/** `file:` — a `.gtpack` file, or a pack directory (the development form). */
export class FileResolver implements PackResolver {
  readonly schemes = ['file'] as const;

  async resolve(ref: PackRef, ctx: ResolveContext): Promise<ResolvedPack> {
    const p = filePathOf(ref.source, ctx.bundleDir);
    const s = await stat(p).catch((e: Error) => {
      throw new PackError('pack_not_found', `${p}: ${e.message}`);
    });
    if (s.isDirectory()) return { kind: 'directory', dir: p, location: p };
    if (!s.isFile()) throw new PackError('pack_not_found', `${p}: not a file or directory`);
    if (s.size > ctx.limits.maxArchiveBytes) {
      throw new PackError(
        'pack_archive_too_large',
        `${p}: ${s.size} bytes, over the ${ctx.limits.maxArchiveBytes}-byte cap`,
      );
    }
    const bytes = new Uint8Array(await readFile(p));
    if (ref.digest && digestFor(ref.digest, bytes) !== ref.digest.toLowerCase()) {
      throw new PackError(
        'pack_digest_mismatch',
        `${p}: content is ${digestFor(ref.digest, bytes)}, the bundle pins ${ref.digest}`,
      );
    }
    return { kind: 'archive', bytes, digest: packDigest(bytes), location: p, fromCache: false };
  }

  async probe(ref: PackRef, ctx: ResolveContext): Promise<string | undefined> {
    const p = filePathOf(ref.source, ctx.bundleDir);
    try {
      const s = await stat(p);
      return s.isDirectory() ? await newestMtime(p) : `file:${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }

  watchPaths(ref: PackRef, ctx: ResolveContext): string[] {
    return [filePathOf(ref.source, ctx.bundleDir)];
  }
}
