import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FlowValidationError } from '../common/errors.js';
import { WORLD_V01, WORLD_V06, type PreparedComponent } from '../core/component-runtime.js';
import type { FlowIssue } from './flow.types.js';
import {
  assertValid,
  assertValidSource,
  checkFlow,
  loadValidFlowFile,
  validateFlow,
  validateFlowCalls,
  validatePack,
} from './flow-validator.js';
import { loadFlowFile, parseFlow } from './ygtc-loader.js';

const WEATHER_BOT = fileURLToPath(new URL('../../test/fixtures/flows/weather_bot.ygtc', import.meta.url));
const FILE = 'flows/test.ygtc';

/** Lines joined with \n, so a case's line numbers are its array indexes + 1. */
const y = (...lines: string[]): string => lines.join('\n') + '\n';

function errors(issues: FlowIssue[]): FlowIssue[] {
  return issues.filter((i) => i.severity === 'error');
}

function component(name: string, world: PreparedComponent['world'], operations: string[]): PreparedComponent {
  return {
    name,
    version: '1.0.0',
    digest: '0'.repeat(64),
    world,
    exports: [],
    operations: operations.map((o) => ({ name: o })),
  };
}

/** A valid two-node flow; cases change one thing of it. */
const HEAD = ['id: demo', 'type: messaging'];

describe('flow validation: invalid flows, each with its message and position', () => {
  it('reports a YAML syntax error with its line and column', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    reply: "hello', '    routing: out'),
      FILE,
    ).issues;
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({
      severity: 'error',
      code: 'yaml_syntax',
      file: FILE,
      line: 5,
      column: 12,
    });
    expect(issues[0]!.message).toBe(
      'YAML syntax error: Missing closing "quote (the string that starts here is never closed)',
    );
  });

  it('reports a bad indentation as a YAML error on the offending line', () => {
    const issues = checkFlow(y(...HEAD, 'nodes:', '  a:', '    reply: hi', '   routing: out'), FILE).issues;
    expect(issues[0]).toMatchObject({ code: 'yaml_syntax', line: 6 });
    expect(issues[0]!.message).toMatch(/^YAML syntax error: /);
  });

  it('reports a missing id at the start of the document', () => {
    const issues = checkFlow(
      y('# a flow', 'type: messaging', 'nodes:', '  a:', '    reply: hi'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'missing_key',
        message: "missing required key 'id'",
        line: 2,
        column: 1,
      }),
    ]);
  });

  it('reports missing nodes', () => {
    const issues = checkFlow(y(...HEAD, 'title: nothing here'), FILE).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({ message: "missing required key 'nodes'", line: 1, column: 1 }),
    ]);
  });

  it('reports nodes that is not a mapping, at the value', () => {
    const issues = checkFlow(y(...HEAD, 'nodes: [a, b]'), FILE).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'invalid_type',
        message: "'nodes' must be a mapping",
        line: 3,
        column: 8,
      }),
    ]);
  });

  it('reports a node with no operation key, at the node name', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    reply: hi', '    routing: [{ to: b }]', '  b:', '    routing: out'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'node_operation_count',
        message: expect.stringContaining("node 'b' has no operation key: it needs exactly one"),
        line: 7,
        column: 3,
      }),
    ]);
  });

  it('reports a node with two operation keys, at the second one', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    reply: hi', '    templating.handlebars: "x"', '    routing: out'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        message: "node 'a' has 2 operation keys (reply, templating.handlebars): a node has exactly one",
        line: 6,
        column: 5,
      }),
    ]);
  });

  it('reports a bad node name, at the name', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    reply: hi', '  2nd-step:', '    reply: there'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'invalid_node_name',
        message: "invalid node name '2nd-step': node names must match ^[a-zA-Z_][\\w-]*$",
        line: 6,
        column: 3,
      }),
    ]);
  });

  it('reports a start that names an unknown node, at the start value', () => {
    const issues = checkFlow(y(...HEAD, 'start: welcome', 'nodes:', '  a:', '    reply: hi'), FILE).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'unknown_start',
        message: "start names unknown node 'welcome' (nodes: a)",
        line: 3,
        column: 8,
      }),
    ]);
  });

  it('reports a route to an unknown node, at its target', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    reply: hi', '    routing:', '      - to: b', '      - to: nowhere'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({ message: "node 'a' routes to unknown node 'b'", line: 7, column: 13 }),
      expect.objectContaining({
        code: 'unknown_route_target',
        message: "node 'a' routes to unknown node 'nowhere'",
        line: 8,
        column: 13,
      }),
    ]);
  });

  it('reports a cycle that never parks for input, at the route that closes it', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'nodes:',
        '  ask:',
        '    qa.process: { questions: [{ id: n, prompt: "Number?", answer_type: number }] }',
        '    routing: [{ to: ping }]',
        '  ping:',
        '    reply: ping',
        '    routing: [{ to: pong }]',
        '  pong:',
        '    reply: pong',
        '    routing:',
        '      - to: ping',
        '        condition: in.n > 0',
      ),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'cycle_without_park',
        message:
          'cycle ping -> pong -> ping never parks for input (no qa.process node on it): one message would loop until the step limit',
        line: 13,
        column: 13,
      }),
    ]);
  });

  it('accepts a cycle through a qa.process node (it parks each turn)', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'nodes:',
        '  ask:',
        '    qa.process: { questions: [{ id: n, prompt: "Number?", answer_type: number }] }',
        '    routing: [{ to: echo }]',
        '  echo:',
        '    reply: "You said {{in.n}}"',
        '    routing: [{ to: ask }]',
      ),
      FILE,
    ).issues;
    expect(issues).toEqual([]);
  });

  it('reports a self-loop without parking', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  spin:', '    reply: again', '    routing: [{ to: spin }]'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        message: expect.stringContaining('cycle spin -> spin never parks'),
        line: 6,
        column: 21,
      }),
    ]);
  });

  it('reports a component that is not in the pack, at the component name', () => {
    const text = readFileSync(WEATHER_BOT, 'utf8');
    const issues = checkFlow(text, WEATHER_BOT, { components: new Set(['geo_api']) }).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'unknown_component',
        message:
          "node 'forecast_weather': component 'weather_api' is not in the pack (pack components: geo_api)",
        file: WEATHER_BOT,
        line: 20,
        column: 18,
      }),
    ]);
  });

  it('reports a namespace.op key that names no component, at the key', () => {
    const issues = checkFlow(y(...HEAD, 'nodes:', '  a:', '    weather.forecast: { city: in.city }'), FILE, {
      components: new Set(['weather_api']),
    }).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        message:
          "node 'a': operation 'weather.forecast' names no component of the pack (looked for 'weather.forecast', 'weather') (pack components: weather_api)",
        line: 5,
        column: 5,
      }),
    ]);
  });

  it('resolves namespace.op to the component `namespace` and skips component checks without a pack', () => {
    const text = y(...HEAD, 'nodes:', '  a:', '    weather.forecast: { city: in.city }');
    expect(checkFlow(text, FILE, { components: new Set(['weather']) }).issues).toEqual([]);
    expect(checkFlow(text, FILE).issues).toEqual([]);
  });

  it('reports a bad routing shape, at the value', () => {
    const issues = checkFlow(y(...HEAD, 'nodes:', '  a:', '    reply: hi', '    routing: next'), FILE).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        message:
          "node 'a': routing must be 'out', 'reply' or a list of rules ({to, out, reply, status, condition})",
        line: 6,
        column: 14,
      }),
    ]);
  });

  it('reports an unknown key in a routing rule, at the key', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'nodes:',
        '  a:',
        '    reply: hi',
        '    routing:',
        '      - goto: b',
        '  b:',
        '    reply: there',
      ),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'unknown_key',
        message: "node 'a': routing[0]: unknown key 'goto' (allowed: to, out, reply, status, condition)",
        line: 7,
        column: 9,
      }),
    ]);
  });

  it('reports a routing rule without a target', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    reply: hi', '    routing:', '      - condition: in.x == 1'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'invalid_route',
        message: "node 'a': routing rule 1 has no target: give it 'to: <node>', 'out: true' or 'reply: true'",
        line: 7,
        column: 9,
      }),
    ]);
  });

  it('warns about a retry value it cannot use (upstream accepts any mapping), and refuses a scalar retry', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'nodes:',
        '  a:',
        '    weather.forecast: {}',
        '    retry:',
        '      max_attempts: 0',
        '      backoff_ms: 100',
      ),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([]);
    expect(issues).toContainEqual(
      expect.objectContaining({
        severity: 'warning',
        code: 'ignored_hint',
        message: "node 'a': retry.max_attempts must be an integer from 1 to 100; 3 is used",
        line: 7,
        column: 7,
      }),
    );
    const notMap = checkFlow(y(...HEAD, 'nodes:', '  a:', '    reply: hi', '    retry: 3'), FILE).issues;
    expect(errors(notMap)).toEqual([
      expect.objectContaining({
        message: "node 'a': retry must be a mapping, e.g. { max_attempts: 3, backoff_ms: 200 }",
        line: 6,
        column: 12,
      }),
    ]);
  });

  it('refuses a scalar timeout or when (upstream: mappings only), at the value', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    reply: hi', '    timeout: 5 minutes', '    when: in.x == 1'),
      FILE,
    ).issues;
    expect(errors(issues).map((i) => [i.line, i.column, i.message])).toEqual([
      [6, 14, "node 'a': timeout must be a mapping, e.g. { ms: 2000 } or { duration: '2s' }"],
      [7, 11, `node 'a': when must be a mapping, e.g. { condition: 'session.tier == "gold"' }`],
    ]);
    const bad = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    weather.forecast: {}', "    timeout: { duration: 'soon', unit: s }"),
      FILE,
    ).issues;
    expect(errors(bad)).toEqual([]);
    expect(bad.map((i) => [i.severity, i.line, i.column, i.message])).toEqual([
      [
        'warning',
        6,
        16,
        "node 'a': timeout.duration must be a duration such as '250ms', '5s' or '1m30s'; the node has no timeout",
      ],
      ['warning', 6, 34, "node 'a': timeout.unit is not read by this runner (it reads ms or duration)"],
    ]);
  });

  it('warns about an unreachable node, at its name', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'nodes:',
        '  a:',
        '    reply: hi',
        '    routing: out',
        '  orphan:',
        '    reply: nobody calls me',
      ),
      FILE,
    ).issues;
    expect(issues).toEqual([
      expect.objectContaining({
        severity: 'warning',
        code: 'unreachable_node',
        message: "node 'orphan' is unreachable from the start node 'a'",
        line: 7,
        column: 3,
      }),
    ]);
  });

  it('reports an operation a 0.6 component does not declare, at the action', () => {
    const text = readFileSync(WEATHER_BOT, 'utf8').replace('action: forecast_weather', 'action: forcast');
    const components = new Map([
      ['weather_api', component('weather_api', WORLD_V06, ['forecast_weather', 'current'])],
    ]);
    const issues = checkFlow(text, 'weather.ygtc', { components }).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'unknown_operation',
        message:
          "node 'forecast_weather': component 'weather_api' has no operation 'forcast' (it declares: forecast_weather, current)",
        line: 21,
        column: 15,
      }),
    ]);
    // 0.1 components have one `execute` export and take any operation name.
    const v01 = new Map([['weather_api', component('weather_api', WORLD_V01, ['execute'])]]);
    expect(errors(checkFlow(text, 'weather.ygtc', { components: v01 }).issues)).toEqual([]);
  });

  it('reports a condition that does not parse, at the condition', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'nodes:',
        '  a:',
        '    reply: hi',
        '    routing:',
        '      - to: b',
        '        condition: in.age >= ',
        '  b:',
        '    reply: ok',
      ),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'invalid_expression',
        message: `invalid condition of node 'a' "in.age >=": unexpected end of expression at character 10`,
        line: 8,
        column: 20,
      }),
    ]);
  });

  it('reports a template that does not compile', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    templating.handlebars:', '      text: "Hi {{name"'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'invalid_template',
        message: expect.stringMatching(/^node 'a': invalid template: Parse error on line 1/),
        line: 6,
        column: 13,
      }),
    ]);
  });

  it('reports a qa.process choice question without choices', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'nodes:',
        '  a:',
        '    qa.process:',
        '      questions:',
        '        - id: size',
        '          prompt: Size?',
        '          answer_type: choice',
      ),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        code: 'invalid_config',
        message: "node 'a': question 'size' is a choice question without choices",
        line: 7,
        column: 11,
      }),
    ]);
  });

  it('reports an exec node without a component', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    component.exec:', '      operation: run'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      expect.objectContaining({
        message: "node 'a': component.exec needs 'component: <name>'",
        line: 6,
        column: 7,
      }),
    ]);
  });

  it('reports several problems of one file in one pass, sorted by position', () => {
    const issues = checkFlow(
      y('type: messaging', 'start: nope', 'nodes:', '  a:', '    reply: hi', '    routing: [{ to: zz }]'),
      FILE,
    ).issues;
    expect(issues.map((i) => [i.line, i.code])).toEqual([
      [1, 'missing_key'],
      [2, 'unknown_start'],
      [6, 'unknown_route_target'],
    ]);
  });
});

describe('weather_bot fixture', () => {
  it('loads and validates with no issues when the pack has weather_api', async () => {
    const { flow, issues } = await loadFlowFile(WEATHER_BOT);
    expect(issues).toEqual([]);
    expect(flow).toBeDefined();
    expect(validateFlow(flow!, { components: new Set(['weather_api']) })).toEqual([]);
    const valid = await loadValidFlowFile(WEATHER_BOT, {
      components: new Map([['weather_api', component('weather_api', WORLD_V06, ['forecast_weather'])]]),
    });
    expect(valid.id).toBe('weather_bot');
  });

  it('builds the IR: nodes in file order, start, routing with locations, parameters', async () => {
    const { flow } = await loadFlowFile(WEATHER_BOT);
    expect(flow!.start).toBe('in');
    expect(flow!.type).toBe('messaging');
    expect(flow!.title).toBe('Weather bot');
    expect(flow!.parameters).toEqual({ days_default: 3 });
    expect([...flow!.nodes.keys()]).toEqual(['in', 'forecast_weather', 'weather_text']);
    const fw = flow!.nodes.get('forecast_weather')!;
    expect(fw.operation).toBe('mcp.exec');
    expect(fw.loc).toEqual({ file: WEATHER_BOT, line: 18, column: 3 });
    expect(fw.routing).toEqual([{ to: 'weather_text', loc: { file: WEATHER_BOT, line: 26, column: 9 } }]);
    expect(flow!.nodes.get('weather_text')!.routing).toEqual([
      { out: true, loc: { file: WEATHER_BOT, line: 31, column: 9 } },
    ]);
  });
});

describe('loader normalisation', () => {
  it('normalises retry, timeout, when and shorthand routing', () => {
    const { flow, issues } = parseFlow(
      y(
        ...HEAD,
        'start: b',
        'nodes:',
        '  a:',
        '    reply: bye',
        '    routing: reply',
        '  b:',
        '    weather.forecast: { city: Paris }',
        '    retry: { max_attempts: 4 }',
        '    timeout: { duration: 1m30s }',
        '    when: { condition: message.text != "skip" }',
        '    routing: [{ to: a }]',
      ),
      FILE,
    );
    expect(issues).toEqual([]);
    expect(flow!.start).toBe('b');
    const b = flow!.nodes.get('b')!;
    expect(b.retry).toEqual({ maxAttempts: 4, backoffMs: 100 });
    expect(b.timeoutMs).toBe(90_000);
    expect(b.when).toBe('message.text != "skip"');
    expect(b.config).toEqual({ city: 'Paris' });
    expect(flow!.nodes.get('a')!.routing).toEqual([
      { reply: true, loc: { file: FILE, line: 7, column: 14 } },
    ]);
    expect(
      parseFlow(
        y(...HEAD, 'nodes:', '  a:', '    reply: x', '    timeout: { ms: 2500 }'),
        FILE,
      ).flow!.nodes.get('a')!.timeoutMs,
    ).toBe(2500);
  });

  it('returns no flow when there are errors, and a flow with warnings otherwise', () => {
    expect(parseFlow(y('id: x', 'nodes: {}'), FILE).flow).toBeUndefined();
    expect(parseFlow('', FILE)).toEqual({
      issues: [expect.objectContaining({ code: 'empty_flow', line: 1, column: 1 })],
    });
    expect(parseFlow('- just\n- a list\n', FILE).issues[0]).toMatchObject({
      code: 'invalid_type',
      line: 1,
      column: 1,
    });
  });
});

describe('assertValid', () => {
  it('throws FlowValidationError with every issue as file:line:col', () => {
    const text = y(
      ...HEAD,
      'start: nope',
      'nodes:',
      '  a:',
      '    reply: hi',
      '  b:',
      '    reply: unreachable',
    );
    let thrown: unknown;
    try {
      assertValidSource(text, FILE);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(FlowValidationError);
    const err = thrown as FlowValidationError;
    expect(err.code).toBe('flow_invalid');
    expect(err.message).toContain(`${FILE}:3:8: error: start names unknown node 'nope' (nodes: a, b)`);
    expect(err.issues).toEqual([
      { file: FILE, line: 3, column: 8, message: "error: start names unknown node 'nope' (nodes: a, b)" },
    ]);
  });

  it('passes a flow with only warnings and returns it', () => {
    const { flow } = parseFlow(
      y(...HEAD, 'nodes:', '  a:', '    reply: hi', '  b:', '    reply: unreachable'),
      FILE,
    );
    expect(assertValid(flow!)).toBe(flow);
  });

  it('throws on a FlowDefinition with an unknown component', async () => {
    const { flow } = await loadFlowFile(WEATHER_BOT);
    expect(() => assertValid(flow!, { components: new Set() })).toThrow(
      /weather_bot\.ygtc:20:18: error: node 'forecast_weather': component 'weather_api' is not in the pack \(pack components: none\)/,
    );
  });
});

describe('flow.call validation', () => {
  const flow = (text: string, file: string) => {
    const { flow: f, issues } = parseFlow(text, file);
    if (!f) throw new Error(issues.map((i) => i.message).join('\n'));
    return f;
  };

  it('reports a flow.call without a flow, with a non-mapping input, or with an unknown key', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'nodes:',
        '  a:',
        '    flow.call: { input: { x: 1 } }',
        '    routing: [{ to: b }]',
        '  b:',
        '    flow.call: { flow: other, input: [1, 2] }',
        '    routing: [{ to: c }]',
        '  c:',
        '    flow.call: { flow: other, inputs: {} }',
      ),
      FILE,
    ).issues;
    expect(errors(issues).map((i) => [i.line, i.column, i.message])).toEqual([
      [5, 16, "node 'a': flow.call needs 'flow_id: <flow id>' naming a flow of the same pack"],
      [8, 38, "node 'b': flow.call input must be a mapping (it becomes the sub-flow's 'in')"],
      [11, 31, "node 'c': flow.call has unknown key 'inputs' (allowed: flow_id, flow, input, output)"],
    ]);
  });

  it('accepts the short form and no longer warns that flow.call is unsupported', () => {
    const issues = checkFlow(y(...HEAD, 'nodes:', '  a:', '    flow.call: other'), FILE).issues;
    expect(issues).toEqual([]);
  });

  it('reports a call to a flow the pack does not have, at the flow name', () => {
    const a = flow(
      y('id: a', 'type: messaging', 'nodes:', '  go:', '    flow.call:', '      flow: nope'),
      'a.ygtc',
    );
    const b = flow(y('id: b', 'type: messaging', 'nodes:', '  go:', '    flow.call: a'), 'b.ygtc');
    expect(validatePack([a, b])).toEqual([
      {
        severity: 'error',
        code: 'unknown_flow',
        message: "node 'go': flow.call names flow 'nope', which is not in the pack (pack flows: a, b)",
        file: 'a.ygtc',
        line: 6,
        column: 13,
      },
    ]);
  });

  it('refuses a cycle of calls once, at the call that closes it, and a flow calling itself', () => {
    const a = flow(
      y('id: a', 'type: messaging', 'nodes:', '  to_b:', '    flow.call: { flow: b }'),
      'a.ygtc',
    );
    const b = flow(
      y('id: b', 'type: messaging', 'nodes:', '  to_c:', '    flow.call:', '      flow: c'),
      'b.ygtc',
    );
    const c = flow(y('id: c', 'type: messaging', 'nodes:', '  back:', '    flow.call: a'), 'c.ygtc');
    const self = flow(
      y('id: self', 'type: messaging', 'nodes:', '  again:', '    flow.call: self'),
      's.ygtc',
    );
    const ok = flow(y('id: ok', 'type: messaging', 'nodes:', '  call:', '    flow.call: c'), 'ok.ygtc');
    const issues = validateFlowCalls([a, b, c, self, ok]);
    expect(issues).toEqual([
      {
        severity: 'error',
        code: 'flow_call_cycle',
        message:
          "node 'back': flow.call closes a cycle of calls (a -> b -> c -> a); a flow may not call itself, directly or through others",
        file: 'c.ygtc',
        line: 5,
        column: 16,
      },
      {
        severity: 'error',
        code: 'flow_call_cycle',
        message:
          "node 'again': flow 'self' calls itself with flow.call; a flow may not call itself, directly or through others",
        file: 's.ygtc',
        line: 5,
        column: 16,
      },
    ]);
    expect(validateFlowCalls([a, b])).toEqual([
      expect.objectContaining({ code: 'unknown_flow', file: 'b.ygtc', line: 6, column: 13 }),
    ]);
  });

  it('reports duplicate flow ids across files of a pack', () => {
    const one = flow(y('id: dup', 'type: messaging', 'nodes:', '  a:', '    reply: hi'), 'one.ygtc');
    const two = flow(y('id: dup', 'type: messaging', 'nodes:', '  a:', '    reply: hi'), 'two.ygtc');
    expect(validatePack([one, two])).toEqual([
      expect.objectContaining({ code: 'flow_duplicate', file: 'two.ygtc', line: 1, column: 5 }),
    ]);
  });

  it('warns about retry and timeout on nodes that ignore them', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'nodes:',
        '  a:',
        '    reply: hi',
        '    retry: { max_attempts: 2 }',
        '    timeout: { duration: 5s }',
      ),
      FILE,
    ).issues;
    expect(issues.map((i) => [i.severity, i.code, i.line, i.column])).toEqual([
      ['warning', 'retry_ignored', 6, 5],
      ['warning', 'timeout_ignored', 7, 5],
    ]);
  });
});
