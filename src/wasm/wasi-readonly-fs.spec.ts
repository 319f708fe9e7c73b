import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReadOnlyDescriptor } from './wasi-readonly-fs.js';
import { createWasiSandbox } from './wasi-sandbox.js';

type Fn = (...args: unknown[]) => unknown;

const root = mkdtempSync(join(tmpdir(), 'greentic-assets-'));
mkdirSync(join(root, 'assets', 'cards'), { recursive: true });
writeFileSync(join(root, 'assets', 'cards', 'welcome.json'), '{"type":"AdaptiveCard"}');
const outside = mkdtempSync(join(tmpdir(), 'greentic-outside-'));
writeFileSync(join(outside, 'secret.txt'), 'not for components');

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

/** The `/` preopen a component of this pack sees, called the way jco's glue calls it. */
function preopen(): ReadOnlyDescriptor {
  const wasi = createWasiSandbox({ assetsDir: root });
  const dirs = (
    wasi['wasi:filesystem/preopens'] as { getDirectories(): Array<[ReadOnlyDescriptor, string]> }
  ).getDirectories();
  expect(dirs.map(([, path]) => path)).toEqual(['/']);
  return dirs[0]![0];
}

const follow = { symlinkFollow: true };
const thrown = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return 'no error';
};

describe("a pack's assets over WASI", () => {
  it('reads files under the preopen', () => {
    const dir = preopen();
    const file = dir.openAt(follow, 'assets/cards/welcome.json', {}, { read: true });
    expect(file).toBeInstanceOf(ReadOnlyDescriptor);
    const [bytes] = file.read(1024n, 0n);
    expect(Buffer.from(bytes).toString()).toBe('{"type":"AdaptiveCard"}');
    expect(file.getFlags()).toEqual({ read: true });
    expect(dir.getType()).toBe('directory');
  });

  it('refuses every write: open for writing, create, truncate, mkdir, unlink, rename', () => {
    const dir = preopen();
    expect(thrown(() => dir.openAt(follow, 'assets/cards/welcome.json', {}, { write: true }))).toBe(
      'read-only',
    );
    expect(thrown(() => dir.openAt(follow, 'new.json', { create: true }, { read: true }))).toBe('read-only');
    expect(
      thrown(() => dir.openAt(follow, 'assets/cards/welcome.json', { truncate: true }, { read: true })),
    ).toBe('read-only');
    const methods = dir as unknown as Record<string, Fn>;
    for (const name of [
      'createDirectoryAt',
      'unlinkFileAt',
      'removeDirectoryAt',
      'renameAt',
      'symlinkAt',
      'write',
    ]) {
      expect(thrown(() => methods[name]!('assets'))).toBe('read-only');
    }
    const file = dir.openAt(follow, 'assets/cards/welcome.json', {}, { read: true }) as unknown as Record<
      string,
      Fn
    >;
    expect(thrown(() => file['writeViaStream']!(0n))).toBe('read-only');
    expect(thrown(() => file['setSize']!(0n))).toBe('read-only');
    expect(readdirSync(root)).toEqual(['assets']);
  });

  it('never reaches outside the assets directory', () => {
    const dir = preopen();
    expect(
      thrown(() => dir.openAt(follow, `../${outside.split('/').pop()!}/secret.txt`, {}, { read: true })),
    ).toBe('not-permitted');
    expect(thrown(() => dir.openAt(follow, join(outside, 'secret.txt'), {}, { read: true }))).toBe(
      'not-permitted',
    );
  });

  it('without assets, a component has no directory at all', () => {
    const wasi = createWasiSandbox();
    expect((wasi['wasi:filesystem/preopens'] as { getDirectories(): unknown[] }).getDirectories()).toEqual(
      [],
    );
  });
});
