import { describe, expect, it } from 'vitest';
import type { MessageEnvelope } from '../core/message-envelope.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import {
  WORLD_V06,
  type ComponentCall,
  type ComponentRuntime,
  type PreparedComponent,
} from '../core/component-runtime.js';
import { FlowExecutorService } from './flow-executor.service.js';
import type { FlowRunInput, FlowRunResult, PackView } from './flow-run.types.js';
import { checkFlow, validateFlowCalls } from './flow-validator.js';
import type { FlowDefinition, FlowIssue } from './flow.types.js';
import { componentTargetOf } from './operations.js';
import { parseFlow } from './ygtc-loader.js';
import { TenantComponents } from '../wasm/tenant-components.service.js';
import { messageCtxOf } from '../core/message-ctx.js';
/** The executor as MessageProcessor drives it: each run given its tenant's component calls on `runtime`. */
type Executor = { run(input: Omit<FlowRunInput, 'components' | 'ctx'>): Promise<FlowRunResult> };
function executorOn(runtime: ComponentRuntime): Executor {
  const exec = new FlowExecutorService();
  return {
    run: (input) =>
      exec.run({
        ...input,
        components: new TenantComponents(input.tenant, runtime),
        ctx: messageCtxOf(input.message, input.tenant),
      }),
  };
}

/**
 * The `.ygtc` dialect against upstream greentic-flow's schema and loader (commit 88e39aa): what it
 * accepts passes here, what it refuses is refused, at the offending line and column.
 */

const FILE = 'flows/dialect.ygtc';
const y = (...lines: string[]): string => lines.join('\n') + '\n';
const HEAD = ['id: dialect', 'type: messaging'];

const errors = (issues: FlowIssue[]) =>
  issues.filter((i) => i.severity === 'error').map((i) => [i.line, i.column, i.message]);

function flowOf(text: string): FlowDefinition {
  const { flow, issues } = parseFlow(text, FILE);
  if (!flow) throw new Error(issues.map((i) => `${i.line}:${i.column} ${i.message}`).join('\n'));
  return flow;
}

class EchoRuntime implements ComponentRuntime {
  readonly kind = 'echo';
  readonly calls: ComponentCall[] = [];
  async prepare(): Promise<PreparedComponent> {
    throw new Error('not used');
  }
  async invoke(_t: TenantCtx, call: ComponentCall): Promise<unknown> {
    this.calls.push(call);
    return { op: call.operation, args: call.input };
  }
  async close(): Promise<void> {}
}

function comp(name: string, ops: string[]): PreparedComponent {
  return {
    name,
    version: '1',
    digest: 'b'.repeat(64),
    world: WORLD_V06,
    exports: [],
    operations: ops.map((o) => ({ name: o })),
  };
}

function pack(flows: FlowDefinition[], components: PreparedComponent[] = []): PackView {
  return {
    id: 'p',
    version: '1',
    flows: new Map(flows.map((f) => [f.id, f])),
    components: new Map(components.map((c) => [c.name, c])),
  };
}

function message(text: string): MessageEnvelope {
  return {
    id: `m-${text}`,
    tenant: 't',
    env: 'dev',
    team: 'default',
    channel: 'web',
    provider: 'webhook',
    conversationId: 'c',
    userId: 'u',
    sessionKey: 't:webhook:c:u',
    text,
    attachments: [],
    timestamp: '2026-01-01T00:00:00Z',
  };
}

function runOnce(exec: Executor, p: PackView, flowId: string, text: string) {
  return exec.run({
    tenant: { tenantId: 't', envId: 'dev' },
    message: message(text),
    pack: p,
    flowId,
    snapshot: null,
    sessionData: { tier: 'gold' },
    allowedSecrets: [],
    stepLimit: 20,
    componentDeadlineMs: 1000,
  });
}

describe('.ygtc dialect: what upstream accepts', () => {
  it('accepts qa.process with only a welcome, which greets and moves on', async () => {
    const f = flowOf(
      y(
        ...HEAD,
        'nodes:',
        '  hello:',
        '    qa.process: { welcome: "Hi there" }',
        '    routing: [{ to: bye }]',
        '  bye:',
        '    reply: Bye',
      ),
    );
    expect(checkFlow(y(...HEAD, 'nodes:', '  a:', '    qa.process: { welcome: Hi }'), FILE).issues).toEqual(
      [],
    );
    const r = await runOnce(executorOn(new EchoRuntime()), pack([f]), 'dialect', 'x');
    expect(r.status).toBe('completed');
    expect(r.replies).toEqual([{ text: 'Hi there' }, { text: 'Bye' }]);
  });

  it('counts a welcome-only qa.process as not parking when it checks loops', () => {
    const loop = (qa: string) =>
      checkFlow(
        y(
          ...HEAD,
          'nodes:',
          '  a:',
          `    qa.process: ${qa}`,
          '    routing: [{ to: b }]',
          '  b:',
          '    reply: x',
          '    routing: [{ to: a }]',
        ),
        FILE,
      ).issues.map((i) => i.code);
    expect(loop('{ welcome: Hi }')).toContain('cycle_without_park');
    expect(loop('{ questions: [{ id: q, prompt: Q }] }')).not.toContain('cycle_without_park');
  });

  it('accepts object-shaped timeout, when and retry, and runs what it reads', async () => {
    const text = y(
      ...HEAD,
      'nodes:',
      '  gold:',
      '    reply: gold member',
      '    when: { condition: session.tier == "gold" }',
      '    routing: [{ to: call }]',
      '  call:',
      '    weather.forecast: { city: Paris }',
      '    timeout: { ms: 750 }',
      '    retry: { max_attempts: 2, backoff_ms: 5 }',
      '  slow:',
      '    weather.forecast: {}',
      "    timeout: { duration: '1m30s' }",
      '    retry: {}',
    );
    const { flow, issues } = parseFlow(text, FILE);
    expect(issues.filter((i) => i.code !== 'unreachable_node')).toEqual([]);
    expect(flow!.nodes.get('gold')!.when).toBe('session.tier == "gold"');
    expect(flow!.nodes.get('call')).toMatchObject({
      timeoutMs: 750,
      retry: { maxAttempts: 2, backoffMs: 5 },
    });
    expect(flow!.nodes.get('slow')).toMatchObject({
      timeoutMs: 90_000,
      retry: { maxAttempts: 3, backoffMs: 100 },
    });
    const runtime = new EchoRuntime();
    const r = await runOnce(
      executorOn(runtime),
      pack([flow!], [comp('weather', ['forecast'])]),
      'dialect',
      'x',
    );
    expect(r.replies).toEqual([{ text: 'gold member' }]);
    expect(runtime.calls[0]).toMatchObject({
      operation: 'forecast',
      input: { city: 'Paris' },
      deadlineMs: 750,
    });
  });

  it("accepts flow.call: { flow_id } (upstream's key; flow stays an alias) and runs the sub-flow", async () => {
    const main = flowOf(
      y(
        'id: main',
        'type: messaging',
        'nodes:',
        '  call:',
        '    flow.call: { flow_id: sub, input: { name: message.text } }',
        '    routing: [{ to: done }]',
        '  done:',
        '    reply: "got {{call.payload.text}}"',
      ),
    );
    const sub = flowOf(y('id: sub', 'type: messaging', 'nodes:', '  hi:', '    reply: "hi {{in.name}}"'));
    expect(validateFlowCalls([main, sub])).toEqual([]);
    const r = await runOnce(executorOn(new EchoRuntime()), pack([main, sub]), 'main', 'Ada');
    expect(r.replies).toEqual([{ text: 'hi Ada' }, { text: 'got hi Ada' }]);
  });

  it('accepts mcp nodes with server and tool, calling that component operation with the arguments', async () => {
    const f = flowOf(
      y(
        ...HEAD,
        'nodes:',
        '  lookup:',
        '    mcp: { server: github, tool: get_issue, arguments: { number: message.text }, output: issue }',
        '    routing: [{ to: say }]',
        '  say:',
        '    reply: "{{issue.op}} {{lookup.payload.args.number}}"',
      ),
    );
    expect(componentTargetOf(f.nodes.get('lookup')!)).toMatchObject({
      component: 'github',
      operation: 'get_issue',
    });
    const runtime = new EchoRuntime();
    const r = await runOnce(executorOn(runtime), pack([f], [comp('github', ['get_issue'])]), 'dialect', '42');
    expect(r.replies).toEqual([{ text: 'get_issue 42' }]);
  });

  it('reserves in_map, out_map, err_map and operation: component.exec with an operation sibling and mappings', async () => {
    const f = flowOf(
      y(
        ...HEAD,
        'nodes:',
        '  extract:',
        '    component.exec: { component: msg2events, message: message.text, source_provider: webchat }',
        '    operation: extract',
        '    out_map: { kind: out.op }',
        '    routing: [{ to: say }]',
        '  say:',
        '    reply: "{{extract.payload.kind}}"',
      ),
    );
    const runtime = new EchoRuntime();
    const r = await runOnce(
      executorOn(runtime),
      pack([f], [comp('msg2events', ['extract'])]),
      'dialect',
      'hey',
    );
    expect(r.replies).toEqual([{ text: 'extract' }]);
    // Upstream's component.exec carries the component's fields beside `component`.
    expect(runtime.calls[0]).toMatchObject({
      operation: 'extract',
      input: { message: 'hey', source_provider: 'webchat' },
    });
    const mapped = flowOf(
      y(
        ...HEAD,
        'nodes:',
        '  a:',
        '    weather.forecast: { ignored: true }',
        '    in_map: { city: message.text }',
      ),
    );
    const rt2 = new EchoRuntime();
    await runOnce(executorOn(rt2), pack([mapped], [comp('weather', ['forecast'])]), 'dialect', 'Rome');
    expect(rt2.calls[0]!.input).toEqual({ city: 'Rome' });
  });

  it('accepts slot_schema, integer schema_version and the legacy (< 2) multi-key nodes', () => {
    expect(
      checkFlow(
        y(
          ...HEAD,
          'schema_version: 2',
          'slot_schema:',
          '  - { name: city, slot_type: string, pattern: "^[A-Z]" }',
          '  - { name: size, slot_type: enum, enum_values: [s, m] }',
          'nodes:',
          '  a:',
          '    reply: hi',
        ),
        FILE,
      ).issues,
    ).toEqual([]);
    const legacy = parseFlow(
      y(...HEAD, 'schema_version: 1', 'nodes:', '  a:', '    reply: one', '    emit: two'),
      FILE,
    );
    expect(errors(legacy.issues)).toEqual([]);
    expect(legacy.flow!.nodes.get('a')!.operation).toBe('emit');
  });
});

describe('.ygtc flows and the pack i18n strings', () => {
  it('renders {{i18n:key}} in the message locale (xx-YY, xx, en), else the key', async () => {
    const f = flowOf(
      y(
        ...HEAD,
        'nodes:',
        '  a:',
        '    reply: { text: "{{i18n:greet}}, {{message.userId}} ({{i18n:missing.key}})", card: { title: "{{i18n:title}}" } }',
      ),
    );
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const p: PackView = {
      ...pack([f]),
      assets: new Map([
        ['assets/i18n/en.json', enc({ greet: 'Hello', title: 'Title' })],
        ['assets/i18n/fr.json', enc({ greet: 'Bonjour' })],
      ]),
    };
    const exec = executorOn(new EchoRuntime());
    const base = {
      tenant: { tenantId: 't', envId: 'dev' },
      pack: p,
      flowId: 'dialect',
      snapshot: null,
      sessionData: {},
      allowedSecrets: [],
      stepLimit: 5,
      componentDeadlineMs: 100,
    };
    const fr = await exec.run({ ...base, message: { ...message('x'), locale: 'fr-CA' } });
    expect(fr.replies).toEqual([{ text: 'Bonjour, u (missing.key)', card: { title: 'Title' } }]);
    const none = await exec.run({ ...base, message: message('y') });
    expect(none.replies[0]!.text).toBe('Hello, u (missing.key)');
  });
});

describe('.ygtc dialect: what upstream refuses', () => {
  it('refuses scalar timeout, when and retry at the value', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    reply: hi', '    timeout: 5s', '    when: in.x == 1', '    retry: 3'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      [6, 14, "node 'a': timeout must be a mapping, e.g. { ms: 2000 } or { duration: '2s' }"],
      [7, 11, `node 'a': when must be a mapping, e.g. { condition: 'session.tier == "gold"' }`],
      [8, 12, "node 'a': retry must be a mapping, e.g. { max_attempts: 3, backoff_ms: 200 }"],
    ]);
  });

  it('refuses mcp payloads without server or tool, or with bad arguments/output', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'nodes:',
        '  a:',
        '    mcp: { tool: get_issue }',
        '  b:',
        '    mcp: { server: "", tool: t, arguments: [1], output: 3 }',
        '  c:',
        '    mcp: github/get_issue',
      ),
      FILE,
    ).issues;
    expect(errors(issues).filter(([, , m]) => String(m).includes('mcp'))).toEqual([
      [5, 10, "node 'a': mcp needs 'server': a non-empty string"],
      [7, 20, "node 'b': mcp needs 'server': a non-empty string"],
      [7, 44, "node 'b': mcp 'arguments' must be a mapping"],
      [7, 57, "node 'b': mcp 'output' must be a string (the state key the result lands under)"],
      [9, 10, "node 'c': mcp needs a mapping { server, tool, arguments?, output? }"],
    ]);
  });

  it('refuses two operation keys, a string schema_version, route keys it does not know, bad slot_schema', () => {
    const issues = checkFlow(
      y(
        ...HEAD,
        'schema_version: "2"',
        'slot_schema:',
        '  - { name: city, slot_type: string }',
        'nodes:',
        '  a:',
        '    reply: hi',
        '    templating.handlebars: "x"',
        '    routing: [{ next: b }]',
        '  b:',
        '    reply: bye',
      ),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      [3, 17, "'schema_version' must be an integer"],
      [5, 5, "'slot_schema[0]' is missing required key 'pattern'"],
      [9, 5, "node 'a' has 2 operation keys (reply, templating.handlebars): a node has exactly one"],
      [10, 17, "node 'a': routing[0]: unknown key 'next' (allowed: to, out, reply, status, condition)"],
    ]);
  });

  it('refuses a flow.call naming both flow_id and flow', () => {
    const issues = checkFlow(
      y(...HEAD, 'nodes:', '  a:', '    flow.call: { flow_id: x, flow: y }'),
      FILE,
    ).issues;
    expect(errors(issues)).toEqual([
      [5, 30, "node 'a': flow.call has both 'flow_id' and 'flow'; 'flow' is an alias of 'flow_id', give one"],
    ]);
  });
});
