import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packAssetsDir } from './pack-assets.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'greentic-pack-assets-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

describe("a pack's assets as a directory", () => {
  it('writes the assets/ entries once per content, without the assets/ prefix', async () => {
    const assets = new Map([
      ['assets/cards/welcome.json', text('{"type":"AdaptiveCard"}')],
      ['assets/i18n/en.json', text('{}')],
      ['flows/main.ygtc', text('not an asset')],
    ]);
    const dir = await packAssetsDir(assets, { cacheDir });
    expect(dir).toBeDefined();
    expect(readdirSync(dir!).sort()).toEqual(['cards', 'i18n']);
    expect(readFileSync(join(dir!, 'cards', 'welcome.json'), 'utf8')).toBe('{"type":"AdaptiveCard"}');
    // Same content (in another order): same directory; other content: another one.
    expect(await packAssetsDir(new Map([...assets].reverse()), { cacheDir })).toBe(dir);
    const other = await packAssetsDir(new Map([['assets/cards/welcome.json', text('{}')]]), { cacheDir });
    expect(other).not.toBe(dir);
    expect(readdirSync(join(cacheDir, 'pack-assets')).filter((n) => !n.startsWith('.'))).toHaveLength(2);
  });

  it('has nothing for a pack without assets, and skips unsafe paths', async () => {
    expect(await packAssetsDir(new Map(), { cacheDir })).toBeUndefined();
    expect(
      await packAssetsDir(
        new Map([
          ['assets/../escape.txt', text('x')],
          ['assets//x', text('x')],
          ['assets/', text('x')],
        ]),
        { cacheDir },
      ),
    ).toBeUndefined();
  });
});
