import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturePath } from '../../../test/fixtures/fixture-paths.js';
import { EXIT_CALL_FAILED, EXIT_INVALID, EXIT_OK, EXIT_USAGE, MANIFEST, runCli } from './cli.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const FIXTURES = resolve('test/fixtures/components');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'greentic-component-cli-'));
});

afterAll(() => rm(dir, { recursive: true, force: true }));

describe('greentic-component wat', () => {
  it('assembles a WAT component next to the source or where -o says', async () => {
    const out = join(dir, 'echo.wasm');
    const r = await cli('wat', join(FIXTURES, 'echo.wat'), '-o', out);
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toMatch(/^assembled .*echo\.wasm \(\d+ bytes\)$/);
    expect((await readFile(out)).subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
  });

  it('reports a syntax error as an invalid component', async () => {
    const bad = join(dir, 'bad.wat');
    await import('node:fs/promises').then((fs) => fs.writeFile(bad, '(component (func $f (result u32)'));
    const r = await cli('wat', bad);
    expect(r.code).toBe(EXIT_INVALID);
    expect(r.err).toContain('cannot assemble');
  });
});

describe('greentic-component describe', () => {
  it('shows world, exports, imports and operations', async () => {
    const r = await cli('describe', fixturePath('js-v06'));
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toContain('world:      greentic:component@0.6.0');
    expect(r.out).toContain(
      'exports:    greentic:component/component-descriptor@0.6.0, greentic:component/node@0.6.0',
    );
    expect(r.out).toMatch(/imports: +.*wasi:cli\/stdout/);
    expect(r.out).toContain('    sum  input {"type":"object"');
  });

  it("lists an upstream 0.6.0 component's operations from node.describe(), with summaries", async () => {
    const r = await cli('describe', fixturePath('js-upstream'));
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toContain('exports:    greentic:component/node@0.6.0');
    for (const name of [
      'greentic:state/state-store',
      'greentic:http/http-client',
      'greentic:secrets-store/secrets-store',
    ]) {
      expect(r.out).toMatch(new RegExp(`imports: +.*${name}`));
    }
    expect(r.out).toContain(
      '    count  Adds one to a counter kept in state-store (per session)  input {"type":"object"}',
    );
    expect(r.out).toContain('    whoami  Reports the operation and the envelope it was called with');
  });

  it('prints JSON with --json, and refuses a component of neither world', async () => {
    const r = await cli('describe', fixturePath('echo'), '--json');
    expect(JSON.parse(r.out)).toMatchObject({
      world: 'greentic:component@0.1.0',
      exports: ['execute'],
      imports: [],
      operations: [{ name: 'execute' }],
    });
    const neither = await cli('describe', fixturePath('neither'));
    expect(neither.code).toBe(EXIT_INVALID);
    expect(neither.err).toContain('it exports: add, answer');
  });
});

describe('greentic-component run', () => {
  it('runs one call through the pool and prints the result', async () => {
    const r = await cli('run', fixturePath('echo'), '--input', '{"q":"Paris","days":3}');
    expect(r.code).toBe(EXIT_OK);
    expect(JSON.parse(r.out)).toEqual({ q: 'Paris', days: 3 });
    const sum = await cli('run', fixturePath('js-v06'), '--op', 'sum', '--input', '{"values":[1,2,3]}');
    expect(JSON.parse(sum.out)).toEqual({ sum: 6 });
  });

  it('stops a loop at --deadline-ms with exit code 3', async () => {
    // 1500 ms leaves room for a cold worker start on a loaded machine (the deadline covers it).
    const r = await cli('run', fixturePath('loop'), '--name', 'loop', '--deadline-ms', '1500');
    expect(r.code).toBe(EXIT_CALL_FAILED);
    expect(r.err).toContain(
      "error [component_timeout]: component 'loop' operation 'execute' for tenant 'local/dev/-' did not finish within its deadline of 1500 ms",
    );
  });

  it('passes --locale as the envelope i18n-id and --assets as a read-only directory', async () => {
    const r = await cli(
      'run',
      fixturePath('js-upstream'),
      '--op',
      'whoami',
      '--locale',
      'fr',
      '--assets',
      '.',
    );
    expect(r.code).toBe(EXIT_OK);
    expect(JSON.parse(r.out)).toMatchObject({ op: 'whoami', i18n: 'fr', tenant: 'local' });
    const missing = await cli('run', fixturePath('js-upstream'), '--assets', '/no/such/dir');
    expect(missing.code).not.toBe(EXIT_OK);
    expect(missing.err).toContain('--assets /no/such/dir: no such directory');
  });

  it('gives host imports what the flags allow, and nothing else', async () => {
    const host = fixturePath('js-host');
    const allowed = await cli(
      'run',
      host,
      '--op',
      'secret',
      '--input',
      '{"name":"api_key"}',
      '--secret',
      'api_key=xyz',
    );
    expect(JSON.parse(allowed.out)).toEqual({ value: 'xyz' });
    const refused = await cli(
      'run',
      host,
      '--op',
      'secret',
      '--input',
      '{"name":"other"}',
      '--secret',
      'api_key=xyz',
    );
    expect(JSON.parse(refused.out)).toMatchObject({ error: { code: 'denied' } });
    const state = await cli(
      'run',
      host,
      '--name',
      'counter',
      '--op',
      'count',
      '--state',
      '{"component_state":{"counter":{"count":"41"}}}',
      '--show-state',
    );
    expect(JSON.parse(state.out)).toEqual({ count: 42 });
    expect(state.err).toContain('state: {"component_state":{"counter":{"count":"42"}}}');
    const fetchDenied = await cli('run', host, '--op', 'fetch', '--input', '{"url":"http://example.com/"}');
    expect(JSON.parse(fetchDenied.out)).toMatchObject({ error: { code: 'denied' } });
  });

  it('refuses bad flags with a usage error', async () => {
    expect((await cli('run', fixturePath('echo'), '--input', '{nope')).code).toBe(EXIT_USAGE);
    expect((await cli('run', fixturePath('js-v06'), '--op', 'nope')).err).toContain(
      "has no operation 'nope' (it has: echo, sum, fail, crash, clock)",
    );
    expect((await cli('run', join(dir, 'missing.wasm'))).code).toBe(EXIT_USAGE);
  });
});

describe('greentic-component new + build', () => {
  it('creates a 0.6 project with its WIT (world + greentic:host)', async () => {
    const r = await cli('new', 'greeter', '--world', '0.6', '--dir', dir);
    expect(r.code).toBe(EXIT_OK);
    const project = join(dir, 'greeter');
    const manifest = JSON.parse(await readFile(join(project, MANIFEST), 'utf8')) as Record<string, unknown>;
    expect(manifest).toEqual({
      name: 'greeter',
      version: '0.1.0',
      world: '0.6',
      source: 'component.ts',
      wit: 'wit',
      worldName: 'component',
      disableFeatures: ['http', 'fetch-event'],
    });
    const world = await readFile(join(project, 'wit', 'world.wit'), 'utf8');
    expect(world).toContain('package local:greeter;');
    expect(world).toContain('include greentic:component/component@0.6.0;');
    expect(world).toContain('include greentic:host/imports@0.1.0;');
    expect(existsSync(join(project, 'wit', 'deps', 'greentic-host-0.1.0', 'host.wit'))).toBe(true);
    // The skeleton is logic only: the SDK brings the codec, the descriptor and the host wrappers.
    const source = await readFile(join(project, 'component.ts'), 'utf8');
    expect(source).toContain("from '@greentic/component-sdk/host'");
    expect(source).not.toMatch(/cborEncode|DataView|push\(/);
    // Its tsconfig.json types the source against the SDK and the WIT imports: it type-checks.
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    expect(() =>
      execFileSync(process.execPath, [tsc, '-p', join(project, 'tsconfig.json')], { stdio: 'pipe' }),
    ).not.toThrow();
    // A second `new` into the same folder is refused.
    expect((await cli('new', 'greeter', '--dir', dir)).code).toBe(EXIT_USAGE);
    expect((await cli('new', 'Bad Name', '--dir', dir)).err).toContain("'Bad Name' is not a component name");
  });

  it('builds a 0.1 project with componentize-js (cached by source hash) and runs it', async () => {
    expect((await cli('new', 'shouter', '--world', '0.1', '--dir', dir)).code).toBe(EXIT_OK);
    const project = join(dir, 'shouter');
    const built = await cli('build', project);
    expect(built.code).toBe(EXIT_OK);
    expect(built.out).toMatch(
      /^(built|cached) .*shouter\.wasm \(.* MiB, greentic:component@0\.1\.0, 1 operation\(s\)\)$/,
    );
    expect(built.err).toMatch(/\[shouter\] bundle +1 module\(s\) \+ \d+ SDK module\(s\)/);
    expect(built.err).toMatch(/\[shouter\] done +\d+\.\d MiB/);
    const again = await cli('build', project);
    expect(again.out).toMatch(/^cached /);
    expect(again.err).toMatch(/\[shouter\] cache +hit /);
    const ran = await cli('run', join(project, 'dist', 'shouter.wasm'), '--text', 'hello');
    expect(ran.code).toBe(EXIT_OK);
    expect(JSON.parse(ran.out)).toBe('hello');
    // The skeleton logs through greentic:host/log: the line reaches stderr with the tenant.
    expect(ran.err).toContain('message received');
  }, 300_000);

  it('build --watch rebuilds when a source file is written, until stopped', async () => {
    // The 'shouter' project of the test above is built and cached: each rebuild here is a cache hit.
    const project = join(dir, 'shouter');
    const out: string[] = [];
    const err: string[] = [];
    const ac = new AbortController();
    const packComponent = join(dir, 'shouter-pack', 'components', 'shouter.wasm');
    const running = runCli(
      ['build', project, '--watch', '-o', packComponent],
      { out: (l) => out.push(l), err: (l) => err.push(l) },
      { signal: ac.signal },
    );
    const until = async (n: number): Promise<void> => {
      for (let i = 0; i < 600 && out.length < n; i++) await new Promise((r) => setTimeout(r, 100));
      expect(out.length, err.join('\n')).toBeGreaterThanOrEqual(n);
    };
    await until(1);
    expect(err.join('\n')).toContain('[shouter] watching');
    const source = join(project, 'component.ts');
    await writeFile(source, await readFile(source, 'utf8'));
    await until(2);
    expect(out[1]).toMatch(/^cached .*shouter\.wasm/);
    ac.abort();
    expect(await running).toBe(EXIT_OK);
    expect(existsSync(packComponent)).toBe(true);
  }, 120_000);

  it("creates, builds and runs a project against upstream's WIT (node.describe, state-store)", async () => {
    expect((await cli('new', 'upgreeter', '--world', 'upstream', '--dir', dir)).code).toBe(EXIT_OK);
    const project = join(dir, 'upgreeter');
    const world = await readFile(join(project, 'wit', 'world.wit'), 'utf8');
    expect(world).toContain('include greentic:component/component@0.6.0;');
    expect(world).toContain('import greentic:state/state-store@1.0.0;');
    expect(world).not.toContain('greentic:host');
    for (const dep of ['component-0.6.0', 'types-core-0.6.0', 'interfaces-types-0.1.0', 'state-1.0.0']) {
      expect(existsSync(join(project, 'wit', 'deps', `greentic-${dep}`, 'package.wit')), dep).toBe(true);
    }
    const built = await cli('build', project);
    expect(built.code).toBe(EXIT_OK);
    expect(built.out).toMatch(/upgreeter\.wasm \(.* MiB, greentic:component@0\.6\.0, 1 operation\(s\)\)$/);
    const wasm = join(project, 'dist', 'upgreeter.wasm');
    expect((await cli('describe', wasm)).out).toContain(
      '    greet  Greets, counting the greetings of this session',
    );
    const state = join(dir, 'upgreeter-state.json');
    await writeFile(state, '{}');
    const first = await cli('run', wasm, '--input', '{"name":"Ada"}', '--state', `@${state}`, '--show-state');
    expect(JSON.parse(first.out)).toEqual({ text: 'Hello Ada (1)' });
    const after = first.err.slice(first.err.indexOf('state: ') + 'state: '.length).trim();
    await writeFile(state, after);
    const second = await cli('run', wasm, '--input', '{"name":"Ada"}', '--state', `@${state}`);
    expect(JSON.parse(second.out)).toEqual({ text: 'Hello Ada (2)' });
  }, 300_000);
});
