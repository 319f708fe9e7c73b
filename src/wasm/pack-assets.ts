/**
 * A pack's `assets/` as a host directory, for the WASI preopen its components get read-only at `/`
 * (ComponentSpec.assetsDir). Packs hold their files in memory once verified; components read them
 * through the filesystem, so the `assets/` entries are written once per content under
 * `<cacheDir>/pack-assets/<sha256>/` (in a temp directory published with one rename) and shared by
 * every pack, tenant and restart with the same assets.
 */
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { publishDirAtomic, resolveCacheDir, sha256Hex, tempPathFor } from './cache-utils.js';

const PREFIX = 'assets/';
const pending = new Map<string, Promise<string>>();

/** `assets/cards/x.json` -> `cards/x.json`; undefined for anything outside `assets/` or unsafe. */
function assetPath(path: string): string | undefined {
  if (!path.startsWith(PREFIX)) return undefined;
  const rel = path.slice(PREFIX.length);
  // Pack readers refuse unsafe paths already; a directory on disk gets the same check again.
  if (rel === '' || rel.endsWith('/') || posix.isAbsolute(rel) || rel.includes('\\')) return undefined;
  if (rel.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) return undefined;
  return rel;
}

/**
 * The directory holding a pack's `assets/` files (keys are archive paths, `assets/...`), or
 * undefined when the pack has none.
 */
export async function packAssetsDir(
  assets: ReadonlyMap<string, Uint8Array>,
  options: { cacheDir?: string } = {},
): Promise<string | undefined> {
  const files = [...assets]
    .map(([path, bytes]) => [assetPath(path), bytes] as const)
    .filter((e): e is readonly [string, Uint8Array] => e[0] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (files.length === 0) return undefined;
  const key = sha256Hex(...files.flatMap(([path, bytes]) => [path, '\u0000', sha256Hex(bytes), '\n']));
  const dir = join(resolveCacheDir(options.cacheDir), 'pack-assets', key);
  let known = pending.get(dir);
  if (!known) {
    known = materialize(dir, files);
    pending.set(dir, known);
    known.catch(() => pending.delete(dir));
  }
  return known;
}

async function materialize(
  dir: string,
  files: ReadonlyArray<readonly [string, Uint8Array]>,
): Promise<string> {
  if (await isDir(dir)) return dir;
  await mkdir(dirname(dir), { recursive: true });
  const tmp = tempPathFor(dir);
  try {
    for (const [rel, bytes] of files) {
      const target = join(tmp, ...rel.split('/'));
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, bytes);
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  // Another process may have published the same content first: either copy serves.
  await publishDirAtomic(tmp, dir);
  return dir;
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
