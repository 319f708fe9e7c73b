import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TerminusModule } from '@nestjs/terminus';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../common/errors.js';
import { importProviderModules, parseProviderModuleSpec } from './provider-modules.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'provider-modules-'));
writeFileSync(
  path.join(dir, 'two.mjs'),
  'export class FaxModule {}\nexport class SmsModule {}\nexport class Helper {}\nexport const version = 1;\n',
);
writeFileSync(path.join(dir, 'none.mjs'), 'export class Helper {}\nexport function sign() {}\n');

describe('importProviderModules', () => {
  it('splits #ExportName off a spec', () => {
    expect(parseProviderModuleSpec('./a.js#FaxModule')).toEqual({
      target: './a.js',
      exportName: 'FaxModule',
    });
    expect(parseProviderModuleSpec('@acme/fax')).toEqual({ target: '@acme/fax' });
  });

  it('imports a path relative to the bundle: every *Module class, or the one named', async () => {
    const all = await importProviderModules(['./two.mjs'], dir, 'bundle b.yaml');
    expect(all.map((t) => t.name)).toEqual(['FaxModule', 'SmsModule']);
    const one = await importProviderModules(['./two.mjs#SmsModule'], dir, 'bundle b.yaml');
    expect(one.map((t) => t.name)).toEqual(['SmsModule']);
    expect(
      await importProviderModules([path.join(dir, 'two.mjs#FaxModule')], '/elsewhere', 'x'),
    ).toHaveLength(1);
  });

  it('imports a package by name, as the runner would', async () => {
    expect(await importProviderModules(['@nestjs/terminus#TerminusModule'], dir, 'bundle b.yaml')).toEqual([
      TerminusModule,
    ]);
  });

  it('names the bundle, the entry and what is wrong', async () => {
    await expect(importProviderModules(['./two.mjs', './nope.mjs'], dir, 'bundle b.yaml')).rejects.toThrow(
      new RegExp(
        `^bundle b\\.yaml: provider_modules\\[1\\] './nope\\.mjs': cannot import: .*${path.join(dir, 'nope.mjs')}`,
      ),
    );
    await expect(importProviderModules(['./none.mjs'], dir, 'bundle b.yaml')).rejects.toThrow(
      "bundle b.yaml: provider_modules[0] './none.mjs': exports no class named *Module (its exported classes and functions: Helper, sign)",
    );
    await expect(importProviderModules(['./two.mjs#FaxModul'], dir, 'bundle b.yaml')).rejects.toBeInstanceOf(
      ConfigError,
    );
  });
});
