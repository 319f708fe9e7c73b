import 'reflect-metadata';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/greentic-runner/cli.js';

/**
 * `greentic-runner test <pack> <script>`: the demo pack's own script passes (this is how
 * `npm test` runs it), and scripts that expect the wrong thing fail with a readable diff.
 */

const DEMO_PACK = path.resolve('examples/demo/packs/demo');
const DEMO_SCRIPT = path.join(DEMO_PACK, 'tests/conversation.yaml');

async function runTest(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(['test', ...args], { io: { out: (l) => out.push(l), err: (l) => err.push(l) } });
  return { code, out, err };
}

function tempFile(name: string, text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-conv-'));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('greentic-runner test: the demo conversation', () => {
  it('passes the demo pack script with a per-node transcript', async () => {
    const r = await runTest(DEMO_PACK, DEMO_SCRIPT);
    expect(r.err).toEqual([]);
    expect(r.code).toBe(0);
    const text = r.out.join('\n');
    expect(text).toContain(
      "PASS weather bot asks, re-asks, answers and starts again: 4 turns of flow 'weather_bot' as scripted",
    );
    // node, operation, duration, input and output of each node.
    const node = r.out.find((l) => l.trim().startsWith('forecast_weather'))!;
    expect(node).toMatch(
      /forecast_weather\s+mcp\.exec\s+\d+\.\d ms {2}in: \{"q":"Paris","days":3\} {2}out: \{"location":\{"name":"Paris"\}/,
    );
    expect(r.out.filter((l) => /^ {2}✓ turn \d/.test(l))).toHaveLength(4);
  });

  it('fails on a deliberately wrong expectation with a readable diff and exit code 1', async () => {
    const wrong = readFileSync(DEMO_SCRIPT, 'utf8').replace(
      'Weather for Paris: Light rain',
      'Weather for Paris: Bright sunshine',
    );
    const script = tempFile('wrong.yaml', wrong);
    const r = await runTest(DEMO_PACK, script);
    expect(r.code).toBe(1);
    const i = r.out.findIndex((l) => l.includes('✗ turn 3'));
    expect(i).toBeGreaterThan(0);
    expect(r.out[i]).toBe(`  ✗ turn 3 (${script}:23:5): reply 1 does not match (expected at ${script}:25:9)`);
    expect(r.out.slice(i + 1, i + 4)).toEqual([
      '      - expected: "Weather for Paris: Bright sunshine, 22°C / 12°C today; mostly light rain over the next 3 days"',
      '      + actual:   "Weather for Paris: Light rain, 22°C / 12°C today; mostly light rain over the next 3 days"',
      '                                      ^ first difference at character 20',
    ]);
    expect(r.out.at(-1)).toBe(
      'FAIL weather bot asks, re-asks, answers and starts again: turn 3 of 4 did not go as scripted',
    );
    // Stops at the first mismatch: turn 4 never ran.
    expect(r.out.some((l) => l.startsWith('turn 4'))).toBe(false);
  });

  it('shows a missing reply as expected/actual lists', async () => {
    const script = tempFile(
      'count.yaml',
      ['flow: weather_bot', 'turns:', '  - user: hi', '    expect:', '      - { contains: "forecast" }'].join(
        '\n',
      ),
    );
    const r = await runTest(DEMO_PACK, script);
    expect(r.code).toBe(1);
    expect(r.out).toContain('  ✗ turn 1 (' + script + ':3:5): expected 1 reply, got 2');
    expect(r.out).toContain('      - 1: text containing "forecast"');
    expect(r.out).toContain('      + 2: "What location would you like a forecast for?"');
  });
});

describe('greentic-runner test: mocks, limits and bad scripts', () => {
  const pack = (() => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-conv-pack-'));
    mkdirSync(path.join(dir, 'flows'));
    writeFileSync(
      path.join(dir, 'pack.yaml'),
      // The component file does not exist: every test below mocks it, so it is never read.
      'id: quotes\nversion: 1.0.0\nflows: [flows/quote.ygtc]\ncomponents:\n  - { name: quotes, version: 1.0.0, path: components/quotes.wasm }\n',
    );
    writeFileSync(
      path.join(dir, 'flows/quote.ygtc'),
      [
        'id: quote',
        'type: messaging',
        'nodes:',
        '  fetch:',
        '    mcp.exec: { component: quotes, action: random, args: { topic: message.text } }',
        '    retry: { max_attempts: 3, backoff_ms: 1 }',
        '    timeout: { duration: 200ms }',
        '    routing: [{ to: say }]',
        '  say:',
        '    reply: "{{fetch.payload.quote}} ({{fetch.payload.topic}})"',
      ].join('\n'),
    );
    return dir;
  })();

  it('answers mocked calls with canned results, in sequence, templated from the input', async () => {
    const script = tempFile(
      'mocked.yaml',
      [
        'mocks:',
        '  quotes:',
        '    random:',
        '      - { error: "upstream busy" }',
        '      - { error: "still busy" }',
        '      - { result: { quote: "Less is more", topic: "{{input.topic}}" } }',
        'turns:',
        '  - user: design',
        '    expect: ["Less is more (design)"]',
        '    status: completed',
      ].join('\n'),
    );
    const r = await runTest(pack, script);
    expect(r.code).toBe(0);
    expect(r.out.find((l) => l.trim().startsWith('fetch'))).toMatch(/\(3 attempts\)$/);
  });

  it('fails a turn that runs over its wall-clock limit', async () => {
    const script = tempFile(
      'slow.yaml',
      [
        'mocks:',
        '  quotes:',
        '    random: { delay: 5s, result: {} }',
        'turns:',
        '  - user: x',
        '    timeout: 100ms',
      ].join('\n'),
    );
    const t0 = Date.now();
    const r = await runTest(pack, script);
    expect(r.code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(4_000);
    expect(r.out.join('\n')).toContain('the turn took longer than its limit of 100 ms');
  });

  it("reports the node timeout as the flow's failure when the script did not expect it", async () => {
    const script = tempFile(
      'timeout.yaml',
      ['mocks:', '  quotes:', '    random: { delay: 1s, result: {} }', 'turns:', '  - user: x'].join('\n'),
    );
    const r = await runTest(pack, script);
    expect(r.code).toBe(1);
    expect(r.out.join('\n')).toContain(
      "+ status: failed (component_timeout: node 'fetch': component 'quotes' failed",
    );
  });

  it('exits 2 with file:line:col for a script that is not valid', async () => {
    const script = tempFile('bad.yaml', ['turns:', '  - user: hi', '    expekt: [hello]'].join('\n'));
    const r = await runTest(pack, script);
    expect(r.code).toBe(2);
    expect(r.err.join('\n')).toContain(`${script}:3:5: 'turns.0': unknown key 'expekt'`);
  });

  it('exits 2 when a component is neither mocked nor built', async () => {
    const script = tempFile('real.yaml', ['turns:', '  - user: hi'].join('\n'));
    const r = await runTest(pack, script);
    expect(r.code).toBe(2);
    expect(r.err.join('\n')).toMatch(
      /component 'quotes': .*quotes\.wasm: .*\(build the component, or mock it in the script\)/,
    );
  });
});
