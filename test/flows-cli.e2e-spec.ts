import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { runFlowCli } from '../src/cli/greentic-flow/cli.js';
import { runCli } from '../src/cli/greentic-runner/cli.js';

/** `greentic-flow` run in-process from its entry function, on the repository's fixtures and demo. */

const ROOT = path.resolve('.');
const INVALID = 'test/fixtures/flows/invalid';
const DEMO_PACK = 'examples/demo/packs/demo';
const DEMO_FLOW = `${DEMO_PACK}/flows/weather_bot.ygtc`;

async function cli(args: string[], cwd = ROOT): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runFlowCli(args, { out: (t) => out.push(t), err: (t) => err.push(t) }, cwd);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('greentic-flow validate', () => {
  it('prints file:line:col for each invalid-flow fixture and exits 1', async () => {
    const r = await cli(['validate', INVALID]);
    expect(r.code).toBe(1);
    const lines = r.out.split('\n');
    const at = (file: string): string | undefined =>
      lines.find((l) => l.startsWith(`${INVALID}/${file}:`) && l.includes(': error: '));
    const expected: Record<string, string> = {
      'bad-condition.ygtc': '10:20: error: invalid condition',
      'bad-timeout.ygtc': "6:14: error: node 'fetch': timeout must be",
      'call-cycle-b.ygtc':
        "5:16: error: node 'back_to_a': flow.call closes a cycle of calls (call_cycle_a -> call_cycle_b -> call_cycle_a)",
      'cycle-without-park.ygtc': '11:13: error: cycle ping -> pong -> ping never parks for input',
      'missing-id.ygtc': "2:1: error: missing required key 'id'",
      'two-operations.ygtc': "6:5: error: node 'greet' has 2 operation keys",
      'unknown-route.ygtc': "7:13: error: node 'greet' routes to unknown node 'farewell'",
      'unknown-start.ygtc': "3:8: error: start names unknown node 'begin'",
      'yaml-syntax.ygtc': '5:12: error: YAML syntax error: Missing closing "quote',
    };
    for (const [file, where] of Object.entries(expected)) {
      expect(at(file), file).toBeDefined();
      expect(at(file)!.slice(`${INVALID}/${file}:`.length)).toContain(where);
    }
    // Every fixture but the calling half of the call cycle has its own error.
    const fixtures = readdirSync(INVALID).filter((f) => f.endsWith('.ygtc'));
    expect(fixtures.filter((f) => !at(f))).toEqual(['call-cycle-a.ygtc']);
    expect(
      lines.every((l) => /^[^:]+:\d+:\d+: (error|warning): .+ \[\w+\]$/.test(l) || /^\d+ files: /.test(l)),
    ).toBe(true);
    // Outside a pack a component node cannot be checked, and the report says so.
    expect(lines).toContain(
      `${INVALID}/bad-timeout.ygtc:4:3: warning: component node 'fetch' (quotes) not checked: components and their operations are checked only inside a pack; validate the pack directory (the one holding pack.yaml) instead [components_unchecked]`,
    );
    expect(lines.at(-1)).toBe('10 files: 10 errors, 1 warning');
  });

  it('answers --json for editors and CI, with the same positions', async () => {
    const r = await cli([
      'validate',
      '--json',
      `${INVALID}/unknown-route.ygtc`,
      `${INVALID}/bad-timeout.ygtc`,
    ]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out) as {
      ok: boolean;
      errors: number;
      files: { file: string; flow?: string; errors: number }[];
      issues: { file: string; line: number; column: number; code: string; severity: string }[];
    };
    expect(report.ok).toBe(false);
    expect(report.errors).toBe(3);
    expect(report.files).toEqual([
      { file: `${INVALID}/unknown-route.ygtc`, flow: 'unknown_route', errors: 1, warnings: 0 },
      { file: `${INVALID}/bad-timeout.ygtc`, flow: 'bad_timeout', errors: 2, warnings: 1 },
    ]);
    expect(report.issues.map((i) => [i.file.split('/').pop(), i.line, i.column, i.code])).toEqual([
      ['bad-timeout.ygtc', 4, 3, 'components_unchecked'],
      ['bad-timeout.ygtc', 6, 14, 'invalid_type'],
      ['bad-timeout.ygtc', 7, 12, 'invalid_type'],
      ['unknown-route.ygtc', 7, 13, 'unknown_route_target'],
    ]);
  });

  it('checks a pack directory as a pack and exits 0 when it is valid', async () => {
    const r = await cli(['validate', DEMO_PACK]);
    expect(r.err).toBe('');
    expect(r.out).toBe('1 file: 0 errors, 0 warnings');
    expect(r.code).toBe(0);
  });

  it('checks components against the pack manifest', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-flow-pack-'));
    writeFileSync(
      path.join(dir, 'pack.yaml'),
      'id: p\nflows: [main.ygtc]\ncomponents: [{ name: real_one, path: c.wasm }]\n',
    );
    writeFileSync(
      path.join(dir, 'main.ygtc'),
      'id: main\ntype: messaging\nnodes:\n  a:\n    component.exec: { component: ghost }\n',
    );
    const r = await cli(['validate', dir]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      "main.ygtc:5:34: error: node 'a': component 'ghost' is not in the pack (pack components: real_one) [unknown_component]",
    );
    // Not built yet: its operations cannot be read, which is said, and names are still checked.
    expect(r.out).toContain(
      "pack.yaml:1:1: warning: operations of component 'real_one' not checked: c.wasm: no such file (build the component first) [component_not_described]",
    );
  });

  it('exits 1 for a path that does not exist and 2 for a usage error', async () => {
    expect((await cli(['validate', 'no/such.ygtc'])).code).toBe(1);
    expect((await cli(['validate'])).code).toBe(2);
    expect((await cli(['frobnicate'])).code).toBe(2);
  });

  it('treats warnings as errors with --strict', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-flow-strict-'));
    const f = path.join(dir, 'w.ygtc');
    writeFileSync(f, 'id: w\ntype: messaging\nnodes:\n  a:\n    reply: hi\n  b:\n    reply: never\n');
    expect((await cli(['validate', f])).code).toBe(0);
    const strict = await cli(['validate', '--strict', f]);
    expect(strict.code).toBe(1);
    expect(strict.out).toContain(
      "w.ygtc:6:3: warning: node 'b' is unreachable from the start node 'a' [unreachable_node]",
    );
  });
});

describe('greentic-flow graph', () => {
  it('draws the demo flow as SVG that parses as XML and names every node', async () => {
    const r = await cli(['graph', DEMO_FLOW, '--format', 'svg']);
    expect(r.code).toBe(0);
    expect(XMLValidator.validate(r.out)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(r.out) as { svg: unknown };
    expect(doc.svg).toBeDefined();
    const titles = [...r.out.matchAll(/<title>([^<]*)<\/title>/g)].map((m) => m[1]);
    for (const node of ['in', 'forecast_weather', 'weather_text']) {
      expect(titles).toContain(node);
      expect(r.out).toMatch(new RegExp(`<text[^>]*>${node}</text>`));
    }
    expect(r.out).toContain('qa.process');
    expect(r.out).toContain('weather_api.forecast_weather');
  });

  it('draws routes with their conditions in mermaid and dot', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-flow-graph-'));
    const f = path.join(dir, 'routes.ygtc');
    writeFileSync(
      f,
      [
        'id: routes',
        'type: messaging',
        'nodes:',
        '  ask:',
        '    qa.process: { questions: [{ id: age, prompt: "Age?", answer_type: number }] }',
        '    routing:',
        '      - { to: adult, condition: "in.age >= 18" }',
        '      - { to: end }',
        '  adult:',
        '    flow.call: { flow: other }',
        '    routing: reply',
        '  end:',
        '    reply: "bye"',
      ].join('\n'),
    );
    const mermaid = await cli(['graph', f, '-f', 'mermaid']);
    expect(mermaid.code).toBe(0);
    expect(mermaid.out).toContain('flowchart TD');
    expect(mermaid.out).toContain('n0 -->|"in.age #gt;= 18"| n1');
    expect(mermaid.out).toContain('n1[/"adult<br/>flow.call<br/>→ flow other"/]');
    expect(mermaid.out).toContain('n1 -.->|"reply"| end_');
    const dot = await cli(['graph', f, '-f', 'dot']);
    expect(dot.out).toContain('"ask" -> "adult" [label="in.age >= 18"];');
    const out = path.join(dir, 'routes.svg');
    const svg = await cli(['graph', f, '-o', out]);
    expect(svg.code).toBe(0);
    expect(XMLValidator.validate(readFileSync(out, 'utf8'))).toBe(true);
  });
});

describe('greentic-flow new and schema', () => {
  it.each(['qa', 'webhook', 'timer'])('writes a %s flow that validates as written', async (template) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-flow-new-'));
    const r = await cli(['new', `my_${template}`, '--template', template, '-o', dir]);
    expect(r.code).toBe(0);
    const file = path.join(dir, `my_${template}.ygtc`);
    expect(r.out).toBe(`wrote ${file} (template ${template})`);
    const v = await cli(['validate', file]);
    expect(v.out).toBe('1 file: 0 errors, 0 warnings');
    expect((parseYaml(readFileSync(file, 'utf8')) as { type: string }).type).toBe(
      template === 'qa' ? 'messaging' : template,
    );
    expect((await cli(['new', `my_${template}`, '-t', template, '-o', dir])).code).toBe(2);
  });

  it('refuses a flow id that cannot be bound', async () => {
    const r = await cli(['new', 'has space']);
    expect(r.code).toBe(2);
    expect(r.err).toContain("flow id 'has space' may hold letters, digits, '_' and '-' only");
  });

  it('prints a JSON Schema that accepts the demo flow and refuses a broken one', async () => {
    const r = await cli(['schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.out) as Record<string, unknown>;
    expect(schema['$schema']).toBe('https://json-schema.org/draft/2020-12/schema');
    // What an editor does with it: plain JSON Schema validation, no runner code involved.
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(schema);
    expect(validate(parseYaml(readFileSync(DEMO_FLOW, 'utf8')))).toBe(true);
    expect(validate({ id: 'x', type: 'messaging', nodes: { a: { reply: 'hi', routing: 42 } } })).toBe(false);
  });

  it('describes the bodies of built-in nodes, so an editor completes and checks inside a node', async () => {
    const schema = JSON.parse((await cli(['schema'])).out) as Record<string, unknown>;
    const validate = new Ajv2020({ strict: false }).compile(schema);
    const flow = (body: Record<string, unknown>): unknown => ({
      id: 'x',
      type: 'messaging',
      nodes: { a: body },
    });
    expect(
      validate(
        flow({
          'qa.process': { questions: [{ id: 'q', prompt: 'Q?', answer_type: 'choice', choices: ['a'] }] },
        }),
      ),
    ).toBe(true);
    expect(
      validate(flow({ 'qa.process': { questions: [{ id: 'q', prompt: 'Q?', answer_type: 'date' }] } })),
    ).toBe(false);
    expect(validate(flow({ 'qa.process': { questions: [{ id: 'q', prompt: 'Q?', max_words: 0 }] } }))).toBe(
      false,
    );
    expect(validate(flow({ 'component.exec': { component: 3 } }))).toBe(false);
    expect(validate(flow({ 'flow.call': { flow_id: 'sub', inputs: {} } }))).toBe(false);
    expect(validate(flow({ 'templating.handlebars': { text: 'hi', reply: 'no' } }))).toBe(false);
    // A component's own namespace.op stays opaque: the component owns its config.
    expect(validate(flow({ 'weather_api.forecast': { anything: [1, 2] } }))).toBe(true);
    const qa = (
      schema as {
        properties: {
          nodes: {
            patternProperties: Record<string, { properties: Record<string, { description?: string }> }>;
          };
        };
      }
    ).properties.nodes.patternProperties;
    const node = Object.values(qa)[0]!;
    expect(node.properties['qa.process']?.description).toMatch(/questions/);
  });

  it('prints the bundle JSON Schema with --bundle: it accepts the demo bundle and refuses a typo', async () => {
    const r = await cli(['schema', '--bundle']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.out) as Record<string, unknown>;
    expect(schema['$schema']).toBe('http://json-schema.org/draft-07/schema#');
    const validate = new Ajv({ strict: false }).compile(schema);
    const demo = parseYaml(
      readFileSync(path.join(ROOT, 'examples/demo/greentic.demo.yaml'), 'utf8'),
    ) as Record<string, unknown>;
    expect(validate(demo)).toBe(true);
    expect(validate({ ...demo, tenant: {} })).toBe(false);
    // greentic-runner prints the same schema.
    const lines: string[] = [];
    expect(await runCli(['schema'], { io: { out: (l) => lines.push(l), err: (l) => lines.push(l) } })).toBe(
      0,
    );
    expect(JSON.parse(lines.join('\n'))).toEqual(schema);
    const flowLines: string[] = [];
    expect(
      await runCli(['schema', '--flow'], { io: { out: (l) => flowLines.push(l), err: () => undefined } }),
    ).toBe(0);
    expect(JSON.parse(flowLines.join('\n'))).toEqual(JSON.parse((await cli(['schema'])).out));
  });
});
