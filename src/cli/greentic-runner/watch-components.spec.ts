import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as componentCli } from '../greentic-component/cli.js';
import { runCli } from './cli.js';

// The 'shouter' scaffold is the project src/cli/greentic-component/cli.spec.ts and the authoring
// e2e build: its componentize-js build comes from the per-machine cache.
let dir: string;
let packDir: string;
let project: string;
const quiet = { out: () => undefined, err: () => undefined };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'greentic-watch-'));
  expect(await componentCli(['new', 'shouter', '--world', '0.1', '--dir', dir], quiet)).toBe(0);
  project = join(dir, 'shouter');
  packDir = join(dir, 'pack');
  await mkdir(join(packDir, 'flows'), { recursive: true });
  await writeFile(
    join(packDir, 'flows', 'shout.ygtc'),
    'id: shout\ntype: messaging\nnodes:\n  shout:\n    component.exec:\n      component: shouter\n      operation: execute\n    routing:\n      - to: answer\n  answer:\n    reply: { text: "{{shout.payload}}" }\n',
  );
  await writeFile(
    join(packDir, 'pack.yaml'),
    'id: watched\nversion: 0.1.0\nflows:\n  - flows/shout.ygtc\ncomponents:\n  - name: shouter\n    version: 0.1.0\n    path: components/shouter.wasm\n',
  );
});

afterAll(() => rm(dir, { recursive: true, force: true }));

describe('greentic-runner start --pack <dir> --watch-component <project>', () => {
  it('builds the component into the pack before the runner starts, then rebuilds it on a change', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const ac = new AbortController();
    const wasm = join(packDir, 'components', 'shouter.wasm');
    let startedWith: Record<string, string | undefined> | undefined;
    let builtBeforeStart = false;
    const code = await runCli(['start', '--pack', packDir, '--watch-component', project], {
      io: { out: (l) => out.push(l), err: (l) => err.push(l) },
      start: async (config) => {
        builtBeforeStart = (await stat(wasm).catch(() => undefined))?.isFile() === true;
        startedWith = config;
      },
      signal: ac.signal,
    });
    expect(code, err.join('\n')).toBe(0);
    expect(startedWith).toBeDefined();
    expect(builtBeforeStart).toBe(true);
    // The watch's own first build, then one per change.
    const waitFor = async (n: number): Promise<void> => {
      for (let i = 0; i < 600 && out.filter((l) => l.includes('shouter.wasm')).length < n; i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(out.filter((l) => l.includes('shouter.wasm')).length, err.join('\n')).toBeGreaterThanOrEqual(n);
    };
    await waitFor(2);
    const before = (await stat(wasm)).mtimeMs;
    const source = join(project, 'component.ts');
    await writeFile(source, await readFile(source, 'utf8'));
    await waitFor(3);
    expect((await stat(wasm)).mtimeMs).toBeGreaterThan(before);
    ac.abort();
  }, 300_000);

  it('refuses a project the pack has no component for, naming what it has', async () => {
    const other = join(dir, 'other');
    expect(await componentCli(['new', 'other', '--world', '0.1', '--dir', dir], quiet)).toBe(0);
    const err: string[] = [];
    const code = await runCli(['start', '--pack', packDir, '--watch-component', other], {
      io: { out: () => undefined, err: (l) => err.push(l) },
      start: async () => undefined,
    });
    expect(code).not.toBe(0);
    expect(err.join('\n')).toContain("has no component 'other' (it has: shouter)");
  });
});
