import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturePath } from '../../test/fixtures/fixture-paths.js';
import { assembleWat, assembleWatFile, buildJsComponent, builderStats } from './component-builder.js';

describe('component builder', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'greentic-builder-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('assembles WAT once per source text', async () => {
    const wat = join(dir, 'tiny.wat');
    await writeFile(wat, '(component)');
    const before = builderStats();
    const path = await assembleWatFile(wat, { cacheDir: dir });
    expect(path).toMatch(/components\/tiny-[0-9a-f]{16}\.wasm$/);
    const bytes = await assembleWat(wat, { cacheDir: dir });
    expect([...bytes.slice(0, 4)]).toEqual([0, 0x61, 0x73, 0x6d]);
    expect(builderStats().watBuilds - before.watBuilds).toBe(1);
    expect(builderStats().watCacheHits - before.watCacheHits).toBe(1);

    await writeFile(wat, '(component (core module))');
    expect(await assembleWatFile(wat, { cacheDir: dir })).not.toBe(path);
  });

  it('reports WAT syntax errors with the file name', async () => {
    const wat = join(dir, 'broken.wat');
    await writeFile(wat, '(component (oops))');
    await expect(assembleWatFile(wat, { cacheDir: dir })).rejects.toThrow(/broken\.wat/);
  });

  it('finds an already built JS component by its source hash (no componentize run)', async () => {
    const root = join(import.meta.dirname, '../..');
    const before = builderStats();
    const path = await buildJsComponent({
      sourcePath: join(root, 'test/fixtures/components/js-v01/component.js'),
      witPath: join(root, 'wit/component-0.1.0'),
      worldName: 'component',
    });
    expect(path).toBe(fixturePath('js-v01'));
    expect(builderStats().jsBuilds).toBe(before.jsBuilds);
    expect((await readFile(path)).length).toBeGreaterThan(1_000_000);
  });
});
