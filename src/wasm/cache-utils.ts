/**
 * Small helpers shared by the transpile cache and the component builder: where the on-disk
 * cache lives, content digests, tool versions (part of every cache key) and atomic writes.
 * Plain functions with no Nest dependency, so a worker thread can use them as well.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';

/** Env var naming the cache directory (default `<cwd>/.cache/greentic`). */
export const CACHE_DIR_ENV = 'GREENTIC_CACHE_DIR';

/** The cache directory: the explicit one, else `$GREENTIC_CACHE_DIR`, else `<cwd>/.cache/greentic`. */
export function resolveCacheDir(explicit?: string): string {
  const dir = explicit ?? process.env[CACHE_DIR_ENV] ?? join(process.cwd(), '.cache', 'greentic');
  return isAbsolute(dir) ? dir : resolve(dir);
}

/** SHA-256 hex of some bytes (the component digest). */
export function sha256Hex(...parts: Array<Uint8Array | string>): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

const require = createRequire(import.meta.url);
const versions = new Map<string, string>();

/**
 * Version of an installed package (part of cache keys). Read from `<node_modules>/<name>/package.json`
 * along Node's lookup paths, so it works for packages whose `exports` hide `./package.json` or
 * offer no `require` condition (componentize-js is import-only).
 */
export function packageVersion(name: string): string {
  const known = versions.get(name);
  if (known) return known;
  for (const dir of require.resolve.paths(name) ?? []) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, name, 'package.json'), 'utf8')) as { version?: string };
      if (pkg.version) {
        versions.set(name, pkg.version);
        return pkg.version;
      }
    } catch {
      // not installed at this level: keep looking
    }
  }
  throw new Error(`cannot find the version of package '${name}'`);
}

/** A unique sibling temp path for `target` (same directory, so a rename is atomic). */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.tmp-${process.pid}-${randomBytes(6).toString('hex')}-${basename(target)}`);
}

/** Writes a file atomically: a temp file in the same directory, then rename over the target. */
export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  try {
    await writeFile(tmp, data);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Publishes a fully written temp directory at `target` with one rename. When another process
 * published the same entry first (the rename fails because the target exists), the temp copy is
 * discarded and theirs is kept: entries are content-addressed, so both are the same.
 * Returns true when this call published it.
 */
export async function publishDirAtomic(tmpDir: string, target: string): Promise<boolean> {
  try {
    await rename(tmpDir, target);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    await rm(tmpDir, { recursive: true, force: true });
    if (code === 'EEXIST' || code === 'ENOTEMPTY' || code === 'EPERM') return false;
    throw err;
  }
}
