import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureBytes } from '../../test/fixtures/fixture-paths.js';
import { ComponentLoadError } from '../common/errors.js';
import { resolveCacheDir } from './cache-utils.js';
import { resetTranspileStats, TranspileCache, transpileStats } from './transpile-cache.js';

describe('TranspileCache', () => {
  let dir: string;
  let echo: Uint8Array;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'greentic-transpile-'));
    echo = await fixtureBytes('echo');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('transpiles once per digest and publishes a complete entry', async () => {
    resetTranspileStats();
    const cache = new TranspileCache(dir);
    const [a, b] = await Promise.all([cache.transpile(echo, 'echo'), cache.transpile(echo, 'echo')]);
    expect(a).toBe(b);
    expect(transpileStats().transpiles).toBe(1);
    expect(a.digest).toBe(TranspileCache.digest(echo));
    expect(a.dir).toBe(cache.entryDir(a.digest));
    expect(a.dir).toContain(`-jco${cache.jcoVersion}-`);
    expect(a.exports).toEqual([['execute', 'function']]);
    expect(a.imports).toEqual([]);
    expect((await readdir(a.dir)).sort()).toEqual(['component.core.wasm', 'component.js', 'meta.json']);
    // No temp directory is left behind.
    expect((await readdir(join(dir, 'transpiled'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    const js = await readFile(join(a.dir, 'component.js'), 'utf8');
    expect(js).toContain('export function instantiate');
  });

  it('reads the entry from disk in a fresh cache (no transpile)', async () => {
    resetTranspileStats();
    const entry = await new TranspileCache(dir).transpile(echo);
    expect(entry.digest).toBe(TranspileCache.digest(echo));
    expect(transpileStats()).toMatchObject({ transpiles: 0, diskHits: 1 });
  });

  it('prunes entries unused past the maximum age and old half-written ones; keeps and marks used the ones it holds', async () => {
    const DAY = 86_400_000;
    const now = Date.now();
    const root = join(dir, 'transpiled');
    const at = (ms: number) => new Date(now - ms);
    const entry = async (name: string, ageMs: number, meta = true) => {
      await mkdir(join(root, name), { recursive: true });
      const f = meta ? join(root, name, 'meta.json') : join(root, name);
      if (meta) await writeFile(f, '{}');
      await utimes(f, at(ageMs), at(ageMs));
    };
    await entry(`${'a'.repeat(64)}-jco0.0.1-p1`, 40 * DAY);
    await entry(`${'b'.repeat(64)}-jco0.0.1-p1`, 5 * DAY);
    await entry('.tmp-1-abc-crashed', 2 * 3_600_000, false);
    await entry('.tmp-2-def-writing', 60_000, false);

    const cache = new TranspileCache(dir);
    const held = await cache.transpile(echo, 'echo');
    await utimes(join(held.dir, 'meta.json'), at(40 * DAY), at(40 * DAY));

    const { removed, kept } = await cache.prune(30 * DAY, now);
    expect(removed.sort()).toEqual(['.tmp-1-abc-crashed', `${'a'.repeat(64)}-jco0.0.1-p1`]);
    expect(kept).toBe(3);
    expect((await readdir(root)).sort()).toEqual(
      ['.tmp-2-def-writing', `${'b'.repeat(64)}-jco0.0.1-p1`, held.dir.split('/').at(-1)!].sort(),
    );
    // Held by this cache: marked used now, so another process's prune leaves it too.
    expect((await stat(join(held.dir, 'meta.json'))).mtimeMs).toBeGreaterThanOrEqual(now - 1_000);

    // Read from disk by another process: marked used as well.
    await utimes(join(held.dir, 'meta.json'), at(40 * DAY), at(40 * DAY));
    await new TranspileCache(dir).transpile(echo, 'echo');
    expect((await stat(join(held.dir, 'meta.json'))).mtimeMs).toBeGreaterThan(now - DAY);
    expect((await new TranspileCache(dir).prune(30 * DAY)).removed).toEqual([]);
  });

  it('re-transpiles an entry that lost a file', async () => {
    const cache = new TranspileCache(dir);
    await rm(join(cache.entryDir(TranspileCache.digest(echo)), 'component.core.wasm'));
    resetTranspileStats();
    await new TranspileCache(dir).transpile(echo);
    expect(transpileStats()).toMatchObject({ transpiles: 1, diskHits: 0 });
  });

  it('compiles core modules once and reuses them for every instance', async () => {
    resetTranspileStats();
    const cache = new TranspileCache(dir);
    const first = await cache.load(echo);
    const again = await cache.load(echo);
    expect(again).toBe(first);
    expect(transpileStats().compiles).toBe(1);
    const x = (await first.instantiate({})) as { execute: (m: unknown) => { data?: string } };
    const y = (await first.instantiate({})) as { execute: (m: unknown) => { data?: string } };
    expect(x).not.toBe(y);
    const message = { id: '1', content: 'hi', sender: 'u', timestamp: 0n };
    expect(x.execute(message).data).toBe('hi');
    expect(y.execute(message).data).toBe('hi');
    expect(transpileStats().compiles).toBe(1);
  });

  it('refuses bytes that are not a component', async () => {
    await expect(
      new TranspileCache(dir).transpile(new Uint8Array([0, 97, 115, 109]), 'junk'),
    ).rejects.toBeInstanceOf(ComponentLoadError);
  });

  it('shares one cache per directory and honours GREENTIC_CACHE_DIR', () => {
    expect(TranspileCache.forDir(dir)).toBe(TranspileCache.forDir(dir));
    const saved = process.env.GREENTIC_CACHE_DIR;
    try {
      process.env.GREENTIC_CACHE_DIR = '/tmp/somewhere';
      expect(resolveCacheDir()).toBe('/tmp/somewhere');
      delete process.env.GREENTIC_CACHE_DIR;
      expect(resolveCacheDir()).toBe(join(process.cwd(), '.cache', 'greentic'));
    } finally {
      if (saved === undefined) delete process.env.GREENTIC_CACHE_DIR;
      else process.env.GREENTIC_CACHE_DIR = saved;
    }
  });
});
