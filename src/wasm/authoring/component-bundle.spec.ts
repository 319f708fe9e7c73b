import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { componentCacheDir } from '../component-builder.js';
import { bundleComponent, sdkVersion } from './component-bundle.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'greentic-bundle-'));
  await writeFile(join(dir, 'tsconfig.json'), '{ "compilerOptions": { "strict": true } }\n');
  await writeFile(join(dir, 'helper.ts'), 'export const greeting = (n: string): string => `Hello ${n}`;\n');
  await writeFile(
    join(dir, 'component.ts'),
    `import { defineNode } from '@greentic/component-sdk';
import { log } from '@greentic/component-sdk/host';
import { greeting } from './helper.js';
interface In { name?: string }
export const { node, componentDescriptor } = defineNode({
  name: 'b', version: '0.1.0',
  operations: { greet: { handler(input: In) { log.info('hi'); return { text: greeting(input.name ?? 'x') }; } } },
});
`,
  );
});

afterAll(() => rm(dir, { recursive: true, force: true }));

describe('bundleComponent', () => {
  it('bundles TypeScript with the SDK into one module, leaving WIT imports as imports', async () => {
    const b = await bundleComponent(join(dir, 'component.ts'));
    expect(b.code).toMatch(/from "greentic:host\/log@0\.1\.0"/);
    expect(b.code).not.toContain('@greentic/component-sdk');
    expect(b.code).not.toContain('interface In');
    expect(b.code).toMatch(/export \{.*componentDescriptor.*node.*\}/s);
    const names = b.inputs.map(([name]) => name);
    expect(names).toEqual(
      expect.arrayContaining(['component.ts', 'helper.ts', 'sdk:src/index.ts', 'sdk:src/host.ts']),
    );
    // A tsconfig near the source is not an input: the build does not read it.
    expect(names.some((n) => n.endsWith('tsconfig.json'))).toBe(false);
    // The same sources give the same bundle and inputs (the cache key's ground).
    expect(await bundleComponent(join(dir, 'component.ts'))).toEqual(b);
    expect(sdkVersion()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('names the SDK entry points when a source imports one that does not exist', async () => {
    await writeFile(
      join(dir, 'bad.ts'),
      "import { x } from '@greentic/component-sdk/nope';\nexport const y = x;\n",
    );
    await expect(bundleComponent(join(dir, 'bad.ts'))).rejects.toThrow(
      /'@greentic\/component-sdk\/nope' is not part of @greentic\/component-sdk \(it has: .*@greentic\/component-sdk\/host/,
    );
  });
});

describe('componentCacheDir', () => {
  it('is GREENTIC_CACHE_DIR, else XDG_CACHE_HOME/greentic, else ~/.cache/greentic', () => {
    expect(componentCacheDir({ GREENTIC_CACHE_DIR: '/a', XDG_CACHE_HOME: '/b' })).toBe('/a');
    expect(componentCacheDir({ XDG_CACHE_HOME: '/b' })).toBe('/b/greentic');
    expect(componentCacheDir({})).toMatch(/\/\.cache\/greentic$/);
  });
});
