/**
 * The conventions the four CLIs share (issue #22 item 2, docs/cli.md): `--version`, examples under
 * every `--help`, "unknown command 'x'" with the closest match, one exit-code scheme (0 ok, 1 what
 * was checked failed, 2 usage), `--json` that parses on every reporting command, JUnit XML from
 * `greentic-runner test`, default output names, readable errors for bad WAT, non-wasm files and
 * pack.yaml, and completion scripts that bash, zsh and fish accept.
 */
import 'reflect-metadata';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as componentCli } from '../src/cli/greentic-component/cli.js';
import { runFlowCli } from '../src/cli/greentic-flow/cli.js';
import { runCli as packCli } from '../src/cli/greentic-pack/cli.js';
import { runCli as runnerCli } from '../src/cli/greentic-runner/cli.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { startRegistry, type TestRegistry } from './fixtures/packs/oci-registry.js';
import { replyFlow, writePackDir } from './fixtures/packs/pack-fixtures.js';

const TOOLS = ['greentic-component', 'greentic-flow', 'greentic-pack', 'greentic-runner'] as const;
type Tool = (typeof TOOLS)[number];

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(tool: Tool, ...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
  const code =
    tool === 'greentic-component'
      ? await componentCli(argv, io)
      : tool === 'greentic-flow'
        ? await runFlowCli(argv, io)
        : tool === 'greentic-pack'
          ? await packCli(argv, io)
          : await runnerCli(argv, { io, env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The real entry point in its own process, as the bin/ shims run it (TypeScript through the test loader). */
function spawnCli(tool: Tool, ...argv: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      ['--import', './test/support/ts-loader.mjs', `src/cli/${tool}/main.ts`, ...argv],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

/** The command names a help text lists under "Commands:" (commander's own `help` left out). */
function listedCommands(help: string): string[] {
  const at = help.indexOf('\nCommands:\n');
  if (at < 0) return [];
  const names: string[] = [];
  for (const line of help.slice(at + '\nCommands:\n'.length).split('\n')) {
    if (line.trim() === '') break;
    const m = /^ {2}(\S+)/.exec(line);
    if (m && m[1] !== 'help') names.push(m[1]!);
  }
  return names;
}

const has = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

let dir: string;
let packDir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-cli-conventions-'));
  packDir = writePackDir(path.join(dir, 'hello-src'), {
    id: 'hello',
    version: '1.2.3',
    flows: { 'hello.ygtc': replyFlow('hello', 'hi from the conventions test') },
  });
});

describe.each(TOOLS)('%s', (tool) => {
  it('--version prints the package version and exits 0', async () => {
    const r = await cli(tool, '--version');
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(VERSION);
  });

  it('every --help, the program and each command, ends with examples of that command', async () => {
    const seen: string[] = [];
    const visit = async (cmdPath: string[]): Promise<void> => {
      const r = await cli(tool, ...cmdPath, '--help');
      expect(r.code, `${tool} ${cmdPath.join(' ')} --help`).toBe(0);
      const examples = r.out.slice(r.out.indexOf('\nExamples:\n'));
      expect(r.out, `${tool} ${cmdPath.join(' ')} --help has examples`).toContain('\nExamples:\n');
      const lines = examples.split('\n').filter((l) => l.startsWith('  $ '));
      expect(lines.length, `${tool} ${cmdPath.join(' ')}`).toBeGreaterThan(0);
      for (const l of lines) expect(l).toContain([tool, ...cmdPath].join(' '));
      seen.push(cmdPath.join(' '));
      for (const c of listedCommands(r.out)) await visit([...cmdPath, c]);
    };
    await visit([]);
    expect(seen).toContain('completion');
    expect(seen.length).toBeGreaterThan(4);
  });

  it('an unknown command says so, with the closest match, and exits 2', async () => {
    const typo = {
      'greentic-component': ['biuld', 'build'],
      'greentic-flow': ['valdate', 'validate'],
      'greentic-pack': ['verfy', 'verify'],
      'greentic-runner': ['valdiate', 'validate'],
    }[tool];
    const r = await cli(tool, typo[0]!);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`unknown command '${typo[0]}'`);
    expect(r.err).toContain(`(Did you mean ${typo[1]}?)`);
    expect(r.err).not.toContain('too many arguments');
    const far = await cli(tool, 'frobnicate');
    expect(far.code).toBe(2);
    expect(far.err).toContain("unknown command 'frobnicate'");
    expect(far.err).not.toContain('Did you mean');
  });

  it('usage errors exit 2: an unknown option, a missing argument, a bad choice', async () => {
    const cmd = { 'greentic-component': 'describe', 'greentic-flow': 'graph', 'greentic-pack': 'inspect' }[
      tool as string
    ];
    const first = cmd ?? 'validate';
    const unknown = await cli(tool, first, 'x', '--no-such-option');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("unknown option '--no-such-option'");
    const missing = await cli(tool, first);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('missing required argument');
    const gone = await cli(tool, first, path.join(dir, 'no-such-file'));
    expect(gone.code, gone.err).toBe(2);
    expect(gone.err).toContain('no-such-file');
    const badShell = await cli(tool, 'completion', 'tcsh');
    expect(badShell.code).toBe(2);
    expect(badShell.err).toContain('Allowed choices are bash, zsh, fish');
  });

  it('the real process: --version exits 0, an unknown command exits 2', { timeout: 120_000 }, async () => {
    const v = await spawnCli(tool, '--version');
    expect(v.code, v.err).toBe(0);
    expect(v.out.trim()).toBe(VERSION);
    const u = await spawnCli(tool, 'frobnicate');
    expect(u.code).toBe(2);
    expect(u.err).toContain("error: unknown command 'frobnicate'");
  });

  it('completion bash completes commands, nested commands, options and option values', async () => {
    const r = await cli(tool, 'completion', 'bash');
    expect(r.code).toBe(0);
    const file = path.join(dir, `${tool}.bash`);
    writeFileSync(file, r.out + '\n');
    const fn = `_${tool.replace(/-/g, '_')}`;
    const complete = (...words: string[]): string[] => {
      const script = `source ${JSON.stringify(file)}
COMP_WORDS=(${[tool, ...words].map((w) => JSON.stringify(w)).join(' ')}); COMP_CWORD=${words.length}
${fn}; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const p = spawnSync('bash', ['--norc', '-c', script], { encoding: 'utf8' });
      expect(p.stderr).toBe('');
      return p.stdout.split('\n').filter(Boolean);
    };
    expect(complete('comp')).toEqual(['completion']);
    expect(complete('completion', '')).toEqual([]);
    expect(complete('--vers')).toEqual(['--version']);
    expect(complete('completion', '--h')).toEqual(['--help']);
    if (tool === 'greentic-pack') {
      expect(complete('keys', 'g')).toEqual(['generate']);
      expect(complete('build', 'dir', '--format', '')).toEqual(['legacy', 'pack-v1']);
      expect(complete('verify', 'x.gtpack', '--j')).toEqual(['--json']);
      // An option's value is not taken for a command: `-o build` stays under `pull`.
      expect(complete('pull', '-o', 'build', '--d')).toEqual(['--digest']);
    }
    if (tool === 'greentic-flow') expect(complete('new', 'x', '-t', '')).toEqual(['qa', 'webhook', 'timer']);
    if (tool === 'greentic-runner') expect(complete('test', 'p', 's', '--j')).toEqual(['--json', '--junit']);
  });

  // zsh and fish are not on every CI image; bash (above) always is.
  it.skipIf(!has('zsh'))('completion zsh is a script zsh parses, registered for the tool', async () => {
    const r = await cli(tool, 'completion', 'zsh');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe(`#compdef ${tool}`);
    const file = path.join(dir, `_${tool}`);
    writeFileSync(file, r.out + '\n');
    const p = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
    expect(p.stderr).toBe('');
    expect(p.status).toBe(0);
  });

  it.skipIf(!has('fish'))('completion fish completes commands and options in fish itself', async () => {
    const r = await cli(tool, 'completion', 'fish');
    expect(r.code).toBe(0);
    const file = path.join(dir, `${tool}.fish`);
    writeFileSync(file, r.out + '\n');
    const complete = (line: string): string[] => {
      const p = spawnSync(
        'fish',
        ['--no-config', '-c', `source ${file}; complete -C ${JSON.stringify(line)}`],
        {
          encoding: 'utf8',
        },
      );
      expect(p.stderr).toBe('');
      return p.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0]!);
    };
    expect(complete(`${tool} comp`)).toEqual(['completion']);
    expect(complete(`${tool} completion --h`)).toContain('--help');
    if (tool === 'greentic-pack') {
      expect(complete('greentic-pack keys gen')).toEqual(['generate']);
      expect(complete('greentic-pack build d --format ')).toEqual(['legacy', 'pack-v1']);
    }
  });
});

describe('exit code 1: the thing checked failed', () => {
  it('greentic-flow validate: a flow with an error', async () => {
    const f = path.join(dir, 'broken.ygtc');
    writeFileSync(f, replyFlow('broken', 'x').replace(/\n$/, '') + '\n    routing:\n      - to: nowhere\n');
    const r = await cli('greentic-flow', 'validate', f);
    expect(r.code).toBe(1);
    expect(r.out).toContain('nowhere');
  });

  it('greentic-pack verify: an unsigned pack under the strict policy, and a tampered one', async () => {
    const out = path.join(dir, 'unsigned.gtpack');
    expect((await cli('greentic-pack', 'build', packDir, '-o', out)).code).toBe(0);
    const strict = await cli('greentic-pack', 'verify', out, '--json');
    expect(strict.code).toBe(1);
    expect(JSON.parse(strict.out)).toMatchObject({ ok: false, code: 'pack_signature_missing' });
    const bytes = readFileSync(out);
    const tampered = path.join(dir, 'tampered.gtpack');
    writeFileSync(tampered, Buffer.concat([bytes.subarray(0, 40), Buffer.from('XX'), bytes.subarray(42)]));
    const bad = await cli('greentic-pack', 'verify', tampered, '--policy', 'dev');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^invalid \[pack_/);
  });

  it('greentic-component describe: a file that is not a component, in one readable line', async () => {
    const text = path.join(dir, 'notes.txt');
    writeFileSync(text, 'hello, this is not wasm\n');
    const r = await cli('greentic-component', 'describe', text);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `error [component_load_failed]: ${text} is not a WebAssembly file (it starts with text "hello, this ", not \\0asm)`,
    );
    const core = path.join(dir, 'core.wasm');
    writeFileSync(core, Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    const c = await cli('greentic-component', 'run', core, '--json');
    expect(c.code).toBe(1);
    expect(JSON.parse(c.out)).toMatchObject({ ok: false, code: 'component_load_failed' });
    expect(c.err).toContain(`${core} is a core WebAssembly module, not a component`);
  });

  it('greentic-component wat: a syntax error as file:line:col and the message, not a Rust dump', async () => {
    const bad = path.join(dir, 'bad.wat');
    writeFileSync(bad, '(component\n  (core module (func (result i32) i32.const)))\n');
    const r = await cli('greentic-component', 'wat', bad);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error [component_load_failed]: cannot assemble ${bad}:2:44: expected a i32`);
    expect(r.err).not.toContain('ErrorInner');
  });

  it('greentic-pack build: a component file that is not wasm, and pack.yaml errors at line:col', async () => {
    const notWasm = writePackDir(path.join(dir, 'notwasm-src'), {
      id: 'notwasm',
      flows: { 'hello.ygtc': replyFlow('hello', 'x') },
      components: { echo: Buffer.from('#!/bin/sh\necho not a component\n') },
    });
    const r = await cli('greentic-pack', 'build', notWasm, '-o', path.join(dir, 'notwasm.gtpack'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      "component 'echo' (components/echo/component.wasm) cannot be loaded: component 'echo' could not be transpiled: it is not a WebAssembly file (it starts with text",
    );
    // Progress lines (…), then the one error line.
    expect(r.err.split('\n').filter((l) => !l.startsWith('… '))).toHaveLength(1);

    const syntax = path.join(dir, 'syntax-src');
    mkdirSync(syntax, { recursive: true });
    writeFileSync(path.join(syntax, 'pack.yaml'), 'id: broken\nversion: 1.0.0\nid: again\n');
    const s = await cli('greentic-pack', 'build', syntax, '-o', path.join(dir, 'x.gtpack'));
    expect(s.code).toBe(1);
    expect(s.err).toContain(`${path.join(syntax, 'pack.yaml')}:3:1: Map keys must be unique`);

    const badId = path.join(dir, 'badid-src');
    mkdirSync(badId, { recursive: true });
    writeFileSync(path.join(badId, 'pack.yaml'), 'version: 1.0.0\nid: not an id\nflows: []\n');
    const i = await cli('greentic-pack', 'build', badId, '-o', path.join(dir, 'y.gtpack'));
    expect(i.code).toBe(1);
    expect(i.err).toContain(`${path.join(badId, 'pack.yaml')}:2:5: 'id' = 'not an id' does not match`);
  });

  it('greentic-runner validate: an invalid bundle', async () => {
    const bundle = path.join(dir, 'bundle.yaml');
    writeFileSync(bundle, 'tenants: {}\nnonsense: [\n');
    const r = await cli('greentic-runner', 'validate', bundle, '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false });
  });
});

describe('--json on the reporting commands', () => {
  let registry: TestRegistry;
  let cwd: string;

  beforeAll(async () => {
    registry = await startRegistry();
    cwd = process.cwd();
  });
  afterAll(async () => {
    process.chdir(cwd);
    await registry?.stop();
  });

  it('greentic-pack build writes <id>-<version>.gtpack without -o; push and pull (no -o) answer JSON', async () => {
    const work = path.join(dir, 'work');
    mkdirSync(work, { recursive: true });
    process.chdir(work);
    try {
      const b = await cli('greentic-pack', 'build', packDir, '--json');
      expect(b.code, b.err).toBe(0);
      const built = JSON.parse(b.out) as Record<string, unknown>;
      expect(built).toMatchObject({
        ok: true,
        file: 'hello-1.2.3.gtpack',
        format: 'legacy',
        pack: 'hello',
        version: '1.2.3',
        flows: 1,
        components: 0,
        signer: null,
      });
      expect(built['digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(existsSync(path.join(work, 'hello-1.2.3.gtpack'))).toBe(true);

      const ref = `oci:${registry.host}/greentic/conventions:1.2.3`;
      const p = await cli('greentic-pack', 'push', 'hello-1.2.3.gtpack', ref, '--json');
      expect(p.code, p.err).toBe(0);
      const pushed = JSON.parse(p.out) as Record<string, string>;
      expect(pushed).toMatchObject({ ok: true, ref, pack: 'hello', version: '1.2.3' });
      expect(pushed['packDigest']).toBe(built['digest']);

      const pulledDir = path.join(dir, 'pulled');
      mkdirSync(pulledDir, { recursive: true });
      process.chdir(pulledDir);
      const l = await cli('greentic-pack', 'pull', ref, '--json');
      expect(l.code, l.err).toBe(0);
      expect(JSON.parse(l.out)).toMatchObject({
        ok: true,
        ref,
        file: 'hello-1.2.3.gtpack',
        packDigest: built['digest'],
        manifestDigest: pushed['manifestDigest'],
      });
      expect(readFileSync(path.join(pulledDir, 'hello-1.2.3.gtpack'))).toEqual(
        readFileSync(path.join(work, 'hello-1.2.3.gtpack')),
      );
    } finally {
      process.chdir(cwd);
    }
  });

  it('greentic-component describe and run', async () => {
    const d = await cli('greentic-component', 'describe', fixturePath('js-v06'), '--json');
    expect(d.code, d.err).toBe(0);
    const described = JSON.parse(d.out) as { world: string; operations: { name: string }[] };
    expect(described.world).toBe('greentic:component@0.6.0');
    expect(described.operations.map((o) => o.name)).toContain('sum');
    const r = await cli('greentic-component', 'run', fixturePath('echo'), '--text', 'hi', '--json');
    expect(r.code, r.err).toBe(0);
    const ran = JSON.parse(r.out) as { ok: boolean; operation: string; ms: number; result: unknown };
    expect(ran).toMatchObject({ ok: true, operation: 'execute' });
    expect(ran.ms).toBeGreaterThan(0);
    expect(JSON.stringify(ran.result)).toContain('hi');
  });

  it('greentic-component build', { timeout: 600_000 }, async () => {
    const projects = path.join(dir, 'components');
    expect((await cli('greentic-component', 'new', 'conventions', '--dir', projects)).code).toBe(0);
    const b = await cli('greentic-component', 'build', path.join(projects, 'conventions'), '--json', '-q');
    expect(b.code, b.err).toBe(0);
    const built = JSON.parse(b.out) as { ok: boolean; file: string; world: string; operations: string[] };
    expect(built).toMatchObject({ ok: true, name: 'conventions', world: 'greentic:component@0.6.0' });
    expect(existsSync(path.resolve(built.file))).toBe(true);
    expect(built.operations.length).toBeGreaterThan(0);
  });
});

describe('greentic-runner test: --json and JUnit XML', () => {
  const DEMO_PACK = path.resolve('examples/demo/packs/demo');
  const DEMO_SCRIPT = path.join(DEMO_PACK, 'tests/conversation.yaml');
  const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: () => false });

  /** The Jenkins/Surefire XSD's required shape: testsuites > testsuite > testcase (+ failure | error | skipped). */
  function checkJUnitShape(text: string): {
    suite: Record<string, string>;
    cases: Record<string, unknown>[];
  } {
    expect(text.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).toBe(true);
    const doc = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '@',
      isArray: (name) => name === 'testsuite' || name === 'testcase',
    }).parse(text, true) as { testsuites: { testsuite: Record<string, unknown>[] } & Record<string, string> };
    const root = doc.testsuites;
    for (const a of ['@name', '@tests', '@failures', '@errors', '@time']) expect(root, a).toHaveProperty(a);
    expect(root.testsuite).toHaveLength(1);
    const suite = root.testsuite[0]! as Record<string, string> & { testcase: Record<string, unknown>[] };
    for (const a of ['@name', '@tests', '@failures', '@errors', '@skipped', '@time', '@timestamp'])
      expect(suite, a).toHaveProperty(a);
    expect(suite['@timestamp']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    for (const n of ['@tests', '@failures', '@errors', '@skipped']) expect(suite[n]).toMatch(/^\d+$/);
    for (const n of ['@time']) expect(suite[n]).toMatch(/^\d+\.\d+$/);
    const cases = suite.testcase;
    expect(Number(suite['@tests'])).toBe(cases.length);
    for (const c of cases) {
      for (const a of ['@name', '@classname', '@time']) expect(c, a).toHaveProperty(a);
      expect(c['@time']).toMatch(/^\d+\.\d+$/);
      // Only the children the XSD allows on a testcase.
      for (const k of Object.keys(c).filter((x) => !x.startsWith('@')))
        expect(['failure', 'error', 'skipped', 'system-out', 'system-err']).toContain(k);
    }
    const count = (k: string): number => cases.filter((c) => k in c).length;
    expect(Number(suite['@failures'])).toBe(count('failure'));
    expect(Number(suite['@errors'])).toBe(count('error'));
    expect(Number(suite['@skipped'])).toBe(count('skipped'));
    expect(root['@tests']).toBe(suite['@tests']);
    expect(root['@failures']).toBe(suite['@failures']);
    return { suite, cases };
  }

  it('a passing script: JSON on stdout (transcript on stderr) and a JUnit file with a testcase per turn', async () => {
    const junit = path.join(dir, 'reports', 'pass.xml');
    const r = await cli('greentic-runner', 'test', DEMO_PACK, DEMO_SCRIPT, '--json', '--junit', junit);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as {
      ok: boolean;
      pack: string;
      flow: string;
      turns: { outcome: string }[];
    };
    expect(report).toMatchObject({ ok: true, pack: 'demo', flow: 'weather_bot' });
    expect(report.turns.map((t) => t.outcome)).toEqual(['passed', 'passed', 'passed', 'passed']);
    expect(r.err).toContain('PASS weather bot');
    const { suite, cases } = checkJUnitShape(readFileSync(junit, 'utf8'));
    expect(suite['@name']).toBe('weather bot asks, re-asks, answers and starts again');
    expect(suite['@failures']).toBe('0');
    expect(cases.map((c) => c['@name'])).toEqual([
      'turn 1: "hi"',
      'turn 2: "the north of New York please"',
      'turn 3: "Paris"',
      'turn 4: "hello again"',
    ]);
    expect(xml.parse(readFileSync(junit, 'utf8'))).toBeTruthy();
  });

  it('a failing turn: exit 1, a <failure> with the diff, the turns after it skipped', async () => {
    const wrong = path.join(dir, 'wrong.yaml');
    writeFileSync(
      wrong,
      readFileSync(DEMO_SCRIPT, 'utf8').replace(
        'Weather for Paris: Light rain',
        'Weather for Paris: Sunshine',
      ),
    );
    const junit = path.join(dir, 'reports', 'fail.xml');
    const r = await cli('greentic-runner', 'test', DEMO_PACK, wrong, '--junit', junit);
    expect(r.code).toBe(1);
    expect(r.out).toContain('FAIL weather bot');
    const { suite, cases } = checkJUnitShape(readFileSync(junit, 'utf8'));
    expect(suite).toMatchObject({ '@tests': '4', '@failures': '1', '@errors': '0', '@skipped': '1' });
    const failure = cases[2]!['failure'] as Record<string, string>;
    expect(failure['@message']).toContain('reply 1 does not match');
    expect(failure['#text']).toContain('+ actual:   "Weather for Paris: Light rain');
    expect(cases[3]).toHaveProperty('skipped');
  });

  it('an unusable script: exit 2, an <error> testcase, and JSON that says why', async () => {
    const junit = path.join(dir, 'reports', 'error.xml');
    const r = await cli(
      'greentic-runner',
      'test',
      DEMO_PACK,
      path.join(dir, 'missing.yaml'),
      '--json',
      '--junit',
      junit,
    );
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, turns: [] });
    const { suite, cases } = checkJUnitShape(readFileSync(junit, 'utf8'));
    expect(suite['@errors']).toBe('1');
    expect(cases[0]).toHaveProperty('error');
  });
});
