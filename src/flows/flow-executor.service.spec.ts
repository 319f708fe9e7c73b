import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Test } from '@nestjs/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { ComponentTimeoutError, ComponentTrapError } from '../common/errors.js';
import type { MessageEnvelope } from '../core/message-envelope.js';
import type { FlowSnapshot } from '../core/session-store.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import {
  COMPONENT_RUNTIME,
  WORLD_V01,
  WORLD_V06,
  type ComponentCall,
  type ComponentRuntime,
  type ComponentSpec,
  type PreparedComponent,
} from '../core/component-runtime.js';
import { DEFAULT_ERROR_REPLY, FlowExecutorService } from './flow-executor.service.js';
import { TenantComponents } from '../wasm/tenant-components.service.js';
import { messageCtxOf } from '../core/message-ctx.js';
import type { FlowRunInput, FlowRunResult, PackView } from './flow-run.types.js';
import type { FlowDefinition } from './flow.types.js';
import { FlowsModule } from './flows.module.js';
import { parseFlow } from './ygtc-loader.js';

// --- A fake component runtime --------------------------------------------------------------------

type Handler = (call: ComponentCall, attempt: number) => unknown;

class FakeRuntime implements ComponentRuntime {
  readonly kind = 'fake';
  readonly calls: ComponentCall[] = [];
  private readonly handlers = new Map<string, Handler>();

  on(component: string, handler: Handler): this {
    this.handlers.set(component, handler);
    return this;
  }

  async prepare(spec: ComponentSpec): Promise<PreparedComponent> {
    return prepared(spec.name, WORLD_V01, ['execute']);
  }

  async invoke(_tenant: TenantCtx, call: ComponentCall): Promise<unknown> {
    this.calls.push(structuredClone(call));
    const handler = this.handlers.get(call.component.name);
    if (!handler) throw new Error(`no handler for ${call.component.name}`);
    const attempts = this.calls.filter((c) => c.component.name === call.component.name).length;
    return handler(call, attempts);
  }

  async close(): Promise<void> {}
}

function prepared(name: string, world: PreparedComponent['world'], operations: string[]): PreparedComponent {
  return {
    name,
    version: '1.0.0',
    digest: 'f'.repeat(64),
    world,
    exports: [],
    operations: operations.map((o) => ({ name: o })),
  };
}

// --- Helpers -------------------------------------------------------------------------------------

const TENANT: TenantCtx = { tenantId: 'acme', envId: 'dev', teamId: 'support' };
const WEATHER_BOT = fileURLToPath(new URL('../../test/fixtures/flows/weather_bot.ygtc', import.meta.url));

function flowOf(text: string, file = 'test.ygtc'): FlowDefinition {
  const { flow, issues } = parseFlow(text, file);
  if (!flow) throw new Error(issues.map((i) => `${i.line}:${i.column} ${i.message}`).join('\n'));
  return flow;
}

const y = (...lines: string[]): string => lines.join('\n') + '\n';

function packOf(flows: FlowDefinition[], components: PreparedComponent[] = []): PackView {
  return {
    id: 'demo-pack',
    version: '1.2.3',
    flows: new Map(flows.map((f) => [f.id, f])),
    components: new Map(components.map((c) => [c.name, c])),
  };
}

let seq = 0;
function msg(text: string, extra: Partial<MessageEnvelope> = {}): MessageEnvelope {
  seq++;
  return {
    id: `m${seq}`,
    tenant: 'acme',
    env: 'dev',
    team: 'support',
    channel: 'webchat-main',
    provider: 'webchat',
    conversationId: 'c1',
    userId: 'u1',
    sessionKey: 'acme:webchat:c1:u1',
    text,
    attachments: [],
    timestamp: '2025-01-01T00:00:00.000Z',
    // The message's trace, as ingress stamps it: components see its trace id.
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    ...extra,
  };
}

function input(
  pack: PackView,
  flowId: string,
  text: string,
  snapshot: FlowSnapshot | null = null,
): FlowRunInput {
  const message = msg(text);
  return {
    tenant: TENANT,
    components: new TenantComponents(TENANT, runtime),
    ctx: messageCtxOf(message, TENANT),
    message,
    pack,
    flowId,
    snapshot,
    sessionData: { locale: 'en' },
    allowedSecrets: ['WEATHER_KEY'],
    stepLimit: 50,
    componentDeadlineMs: 2000,
  };
}

/** Sends each text in turn, carrying the snapshot like the session store would. */
async function converse(
  exec: FlowExecutorService,
  pack: PackView,
  flowId: string,
  texts: string[],
): Promise<FlowRunResult[]> {
  const results: FlowRunResult[] = [];
  let snapshot: FlowSnapshot | null = null;
  for (const t of texts) {
    const r = await exec.run(input(pack, flowId, t, snapshot));
    results.push(r);
    // What a session store keeps is JSON.
    snapshot = r.snapshot ? (JSON.parse(JSON.stringify(r.snapshot)) as FlowSnapshot) : null;
  }
  return results;
}

const texts = (r: FlowRunResult): (string | undefined)[] => r.replies.map((x) => x.text);

let runtime: FakeRuntime;
let exec: FlowExecutorService;

beforeEach(() => {
  runtime = new FakeRuntime();
  exec = new FlowExecutorService();
});

// --- Tests ---------------------------------------------------------------------------------------

describe('FlowExecutorService: weather_bot', () => {
  const weather = flowOf(readFileSync(WEATHER_BOT, 'utf8'), WEATHER_BOT);
  const pack = packOf([weather], [prepared('weather_api', WORLD_V06, ['forecast_weather'])]);

  it('asks, parks, then calls the component and replies from the template', async () => {
    runtime.on('weather_api', (call) => ({
      location: { name: (call.input as { q: string }).q },
      summary: 'sunny, 24°C',
    }));

    const first = await exec.run(input(pack, 'weather_bot', 'hello'));
    expect(first.status).toBe('parked');
    expect(texts(first)).toEqual([
      "Hi there! Let's get your weather forecast.",
      'What location would you like a forecast for?',
    ]);
    expect(first.snapshot).toEqual({
      packId: 'demo-pack',
      packVersion: '1.2.3',
      flowId: 'weather_bot',
      nodeId: 'in',
      state: { in: {} },
      pending: { question: 0 },
    });
    expect(runtime.calls).toHaveLength(0);

    const second = await exec.run(input(pack, 'weather_bot', 'Paris', first.snapshot));
    expect(second.status).toBe('completed');
    expect(texts(second)).toEqual(['Weather for Paris: sunny, 24°C']);
    expect(second.snapshot).toBeNull();
    expect(second.sessionData).toEqual({ locale: 'en' });
    expect(second.trace.map((t) => [t.nodeId, t.operation, t.ok])).toEqual([
      ['in', 'qa.process', true],
      ['forecast_weather', 'mcp.exec', true],
      ['weather_text', 'templating.handlebars', true],
    ]);

    expect(runtime.calls).toHaveLength(1);
    const call = runtime.calls[0]!;
    expect(call.component.name).toBe('weather_api');
    expect(call.operation).toBe('forecast_weather');
    expect(call.input).toEqual({ q: 'Paris', days: 3 });
    expect(call.deadlineMs).toBe(2000);
    expect(call.ctx).toMatchObject({
      flowId: 'weather_bot',
      nodeId: 'forecast_weather',
      userId: 'u1',
      sessionKey: 'acme:webchat:c1:u1',
      text: 'Paris',
      attempt: 1,
      allowedSecrets: ['WEATHER_KEY'],
      traceId: '0af7651916cd43dd8448eb211c80319c',
    });
  });

  it('re-asks when the answer has too many words', async () => {
    runtime.on('weather_api', () => ({ location: { name: 'New York' }, summary: 'rain' }));
    const [, tooLong, ok] = await converse(exec, pack, 'weather_bot', [
      'hi',
      'the north of New York',
      'New York',
    ]);
    expect(tooLong!.status).toBe('parked');
    expect(texts(tooLong!)).toEqual([
      'Please answer in at most 3 words (you used 5).',
      'What location would you like a forecast for?',
    ]);
    expect(tooLong!.snapshot).toMatchObject({ nodeId: 'in', pending: { question: 0 } });
    expect(ok!.status).toBe('completed');
    expect(texts(ok!)).toEqual(['Weather for New York: rain']);
    expect(runtime.calls[0]!.input).toEqual({ q: 'New York', days: 3 });
  });

  it('traces each node with its timing, operation and component, and no payload unless asked', async () => {
    runtime.on('weather_api', () => ({ location: { name: 'Oslo' }, summary: 'snow' }));
    const before = performance.timeOrigin + performance.now();
    const [first, second] = await converse(exec, pack, 'weather_bot', ['hi', 'Oslo']);
    const nodes = [...first!.trace, ...second!.trace];
    expect(nodes.map((n) => n.nodeId)).toEqual(['in', 'in', 'forecast_weather', 'weather_text']);
    expect(nodes[2]).toMatchObject({ operation: 'mcp.exec', component: 'weather_api', ok: true });
    for (const n of nodes) {
      expect(n.startedAt).toBeGreaterThanOrEqual(before);
      expect(n.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(JSON.stringify(nodes)).not.toMatch(/Oslo|snow/);
  });

  it('fails with the default error reply when the component traps, and restarts next time', async () => {
    runtime.on('weather_api', () => {
      throw new ComponentTrapError('wasm trap: unreachable');
    });
    const [, failed, next] = await converse(exec, pack, 'weather_bot', ['hi', 'Paris', 'hello again']);
    expect(failed!.status).toBe('failed');
    expect(failed!.error).toEqual({
      code: 'component_trap',
      message: "node 'forecast_weather': component 'weather_api' failed: wasm trap: unreachable",
      nodeId: 'forecast_weather',
    });
    expect(texts(failed!)).toEqual([DEFAULT_ERROR_REPLY]);
    expect(failed!.snapshot).toBeNull();
    expect(failed!.trace.at(-1)).toMatchObject({
      nodeId: 'forecast_weather',
      ok: false,
      error: 'component_trap',
    });
    expect(next!.status).toBe('parked');
    expect(texts(next!)[0]).toBe("Hi there! Let's get your weather forecast.");
  });

  it('starts afresh when the snapshot names another flow or a node that is gone', async () => {
    const other: FlowSnapshot = {
      packId: 'demo-pack',
      packVersion: '1.0.0',
      flowId: 'other_flow',
      nodeId: 'in',
      state: { in: { q_location: 'Rome' } },
      pending: { question: 0 },
    };
    const r1 = await exec.run(input(pack, 'weather_bot', 'Paris', other));
    expect(r1.status).toBe('parked');
    expect(texts(r1)[0]).toBe("Hi there! Let's get your weather forecast.");
    const r2 = await exec.run(
      input(pack, 'weather_bot', 'Paris', { ...other, flowId: 'weather_bot', nodeId: 'gone' }),
    );
    expect(texts(r2)[0]).toBe("Hi there! Let's get your weather forecast.");
  });
});

describe('FlowExecutorService: questions and routing', () => {
  const survey = flowOf(
    y(
      'id: survey',
      'type: messaging',
      'meta:',
      '  error_reply: "Oops, try again later."',
      'nodes:',
      '  ask:',
      '    qa.process:',
      '      questions:',
      '        - { id: age, prompt: "How old are you?", answer_type: number }',
      '        - { id: color, prompt: "Favourite colour?", answer_type: choice, choices: [Red, Green, Blue] }',
      '    routing:',
      '      - to: adult',
      '        condition: in.age >= 18 && message.text != "stop"',
      '      - to: minor',
      '  adult:',
      '    reply: "Adult, {{in.age}}, likes {{in.color}}"',
      '    routing: out',
      '  minor:',
      '    reply:',
      '      text: "Minor, {{in.age}}"',
      '      choices: ["{{in.color}}", Other]',
      '    routing: out',
    ),
  );
  const pack = packOf([survey]);

  it('re-asks an invalid number and an invalid choice, accepts an index, then routes by condition', async () => {
    const [start, notNumber, age, badChoice, done] = await converse(exec, pack, 'survey', [
      'hi',
      'forty',
      '42',
      'purple',
      '2',
    ]);
    expect(texts(start!)).toEqual(['How old are you?']);
    expect(texts(notNumber!)).toEqual(['"forty" is not a number.', 'How old are you?']);
    expect(notNumber!.snapshot!.pending).toEqual({ question: 0 });
    expect(age!.replies).toEqual([{ text: 'Favourite colour?', choices: ['Red', 'Green', 'Blue'] }]);
    expect(age!.snapshot!.state).toEqual({ in: { age: 42 } });
    expect(age!.snapshot!.pending).toEqual({ question: 1 });
    expect(texts(badChoice!)).toEqual([
      '"purple" is not one of the choices: Red, Green, Blue.',
      'Favourite colour?',
    ]);
    expect(done!.status).toBe('completed');
    expect(texts(done!)).toEqual(['Adult, 42, likes Green']);
  });

  it('takes the second route when the condition does not hold; choices match case-insensitively', async () => {
    const results = await converse(exec, pack, 'survey', ['hi', '12', 'blue']);
    expect(results[2]!.replies).toEqual([{ text: 'Minor, 12', choices: ['Blue', 'Other'] }]);
  });

  it('uses the flow error_reply from meta when a node fails', async () => {
    const broken = flowOf(
      y(
        'id: broken',
        'type: messaging',
        'meta: { error_reply: "Oops, try again later." }',
        'nodes:',
        '  hello:',
        '    reply: hi',
        '    routing: [{ to: call }]',
        '  call:',
        '    component.exec: { component: missing_component, operation: go }',
      ),
    );
    const r = await exec.run(input(packOf([broken]), 'broken', 'x'));
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'component_not_found', nodeId: 'call' });
    expect(texts(r)).toEqual(['hi', 'Oops, try again later.']);
  });

  it('fails a flow.call to a flow the pack does not have', async () => {
    const f = flowOf(y('id: sub', 'type: messaging', 'nodes:', '  go:', '    flow.call: { flow: other }'));
    const r = await exec.run(input(packOf([f]), 'sub', 'x'));
    expect(r.status).toBe('failed');
    expect(r.error).toEqual({
      code: 'flow_not_found',
      message: "node 'go': flow.call names flow 'other', which pack 'demo-pack@1.2.3' does not have",
      nodeId: 'go',
    });
  });
});

describe('FlowExecutorService: limits, when, retry', () => {
  it('stops a circular flow at the step limit instead of hanging', async () => {
    const loop = flowOf(
      y(
        'id: loop',
        'type: messaging',
        'nodes:',
        '  ping:',
        '    templating.handlebars: { text: ping, reply: false }',
        '    routing: [{ to: pong }]',
        '  pong:',
        '    templating.handlebars: { text: pong, reply: false }',
        '    routing: [{ to: ping }]',
      ),
    );
    const r = await exec.run({ ...input(packOf([loop]), 'loop', 'go'), stepLimit: 25 });
    expect(r.status).toBe('failed');
    expect(r.error).toEqual({
      code: 'flow_step_limit',
      message:
        "flow 'loop' exceeded the step limit of 25 node executions for one message (last node 'ping'); does it loop without asking for input?",
      nodeId: 'ping',
    });
    expect(r.trace).toHaveLength(25);
    expect(texts(r)).toEqual([DEFAULT_ERROR_REPLY]);
    expect(r.snapshot).toBeNull();
  });

  it('skips a node whose when is false and follows its routing', async () => {
    const f = flowOf(
      y(
        'id: vip',
        'type: messaging',
        'nodes:',
        '  greet_vip:',
        '    reply: "Welcome back, VIP!"',
        '    when: { condition: session.tier == "gold" }',
        '    routing: [{ to: help }]',
        '  help:',
        '    reply: "How can I help?"',
      ),
    );
    const pack = packOf([f]);
    const plain = await exec.run(input(pack, 'vip', 'hi'));
    expect(texts(plain)).toEqual(['How can I help?']);
    expect(plain.trace.map((t) => t.nodeId)).toEqual(['greet_vip', 'help']);
    const gold = await exec.run({ ...input(pack, 'vip', 'hi'), sessionData: { tier: 'gold' } });
    expect(texts(gold)).toEqual(['Welcome back, VIP!', 'How can I help?']);
  });

  it('retries a failing component with backoff and succeeds on the 3rd attempt', async () => {
    const f = flowOf(
      y(
        'id: flaky',
        'type: messaging',
        'nodes:',
        '  fetch:',
        '    quotes.random: { topic: message.text, lang: "{{session.locale}}" }',
        '    retry: { max_attempts: 3, backoff_ms: 5 }',
        '    timeout: { duration: 1500ms }',
        '    routing: [{ to: say }]',
        '  say:',
        '    reply: "{{fetch.payload.quote}}"',
      ),
    );
    runtime.on('quotes', (_call, attempt) => {
      if (attempt < 3) throw new ComponentTrapError(`flaky ${attempt}`);
      return { quote: 'Simplicity is prerequisite for reliability.' };
    });
    const pack = packOf([f], [prepared('quotes', WORLD_V06, ['random', 'daily'])]);
    const t0 = Date.now();
    const r = await exec.run(input(pack, 'flaky', 'engineering'));
    expect(r.status).toBe('completed');
    expect(texts(r)).toEqual(['Simplicity is prerequisite for reliability.']);
    expect(runtime.calls.map((c) => c.ctx.attempt)).toEqual([1, 2, 3]);
    expect(runtime.calls[0]!.operation).toBe('random');
    expect(runtime.calls[0]!.input).toEqual({ topic: 'engineering', lang: 'en' });
    expect(runtime.calls[0]!.deadlineMs).toBe(1500);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(5 + 10 - 2);
  });

  it('does not retry a timeout', async () => {
    const f = flowOf(
      y(
        'id: slow',
        'type: messaging',
        'nodes:',
        '  call:',
        '    slow.run: {}',
        '    retry: { max_attempts: 5, backoff_ms: 1 }',
      ),
    );
    runtime.on('slow', () => {
      throw new ComponentTimeoutError('deadline of 2000 ms exceeded');
    });
    const r = await exec.run(input(packOf([f], [prepared('slow', WORLD_V01, ['execute'])]), 'slow', 'x'));
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('component_timeout');
    expect(runtime.calls).toHaveLength(1);
  });

  it('ends with the payload as a reply on `reply: true`', async () => {
    const f = flowOf(
      y(
        'id: echo',
        'type: messaging',
        'nodes:',
        '  call:',
        '    echo: { said: message.text }',
        '    routing: [{ reply: true }]',
      ),
    );
    runtime.on('echo', (call) => ({ text: `echo: ${(call.input as { said: string }).said}` }));
    const r = await exec.run(input(packOf([f], [prepared('echo', WORLD_V01, ['execute'])]), 'echo', 'ping'));
    expect(r.status).toBe('completed');
    expect(texts(r)).toEqual(['echo: ping']);
    expect(runtime.calls[0]!.operation).toBe('execute');
  });
});

describe('FlowsModule', () => {
  it('resolves FlowExecutorService from FlowsModule', async () => {
    const fake = new FakeRuntime();
    const moduleRef = await Test.createTestingModule({ imports: [FlowsModule] })
      .overrideProvider(COMPONENT_RUNTIME)
      .useValue(fake)
      .compile();
    const service = moduleRef.get(FlowExecutorService);
    expect(service).toBeInstanceOf(FlowExecutorService);
    const f = flowOf(y('id: hi', 'type: messaging', 'nodes:', '  hi:', '    reply: hello'));
    expect(texts(await service.run(input(packOf([f]), 'hi', 'x')))).toEqual(['hello']);
    await moduleRef.close();
  });
});

describe('FlowExecutorService: flow.call', () => {
  const lookup = flowOf(
    y(
      'id: lookup',
      'type: messaging',
      'parameters: { unit: C }',
      'nodes:',
      '  fetch:',
      '    weather.forecast: { q: in.city, days: in.days }',
      '    routing: [{ to: summarise }]',
      '  summarise:',
      '    templating.handlebars:',
      '      text: "{{in.city}}: {{fetch.payload.summary}} {{parameters.unit}}"',
      '      reply: false',
    ),
  );
  const main = flowOf(
    y(
      'id: main',
      'type: messaging',
      'parameters: { days: 2 }',
      'nodes:',
      '  hello:',
      '    reply: "Looking up {{message.text}}..."',
      '    routing: [{ to: call }]',
      '  call:',
      '    flow.call:',
      '      flow: lookup',
      '      input: { city: message.text, days: parameters.days }',
      '    routing: [{ to: answer }]',
      '  answer:',
      '    reply: "Forecast: {{call.payload.text}}"',
    ),
  );
  const weather = prepared('weather', WORLD_V06, ['forecast']);

  it('runs the called flow with the mapped input and returns its output at <node>.payload', async () => {
    runtime.on('weather', (call) => ({ summary: `sunny for ${(call.input as { days: number }).days} days` }));
    const r = await exec.run({
      ...input(packOf([main, lookup], [weather]), 'main', 'Oslo'),
      traceDetail: true,
    });
    expect(r.status).toBe('completed');
    expect(texts(r)).toEqual(['Looking up Oslo...', 'Forecast: Oslo: sunny for 2 days C']);
    expect(runtime.calls[0]!.input).toEqual({ q: 'Oslo', days: 2 });
    expect(runtime.calls[0]!.ctx.flowId).toBe('lookup');
    expect(r.trace.map((t) => [t.flowId ?? 'main', t.nodeId, t.depth ?? 0])).toEqual([
      ['main', 'hello', 0],
      ['lookup', 'fetch', 1],
      ['lookup', 'summarise', 1],
      ['main', 'call', 0],
      ['main', 'answer', 0],
    ]);
    const call = r.trace.find((t) => t.nodeId === 'call')!;
    expect(call.input).toEqual({ city: 'Oslo', days: 2 });
    expect(call.output).toEqual({ text: 'Oslo: sunny for 2 days C' });
    expect(r.output).toEqual({ text: 'Forecast: Oslo: sunny for 2 days C' });
    expect(r.trace.find((t) => t.nodeId === 'fetch')).toMatchObject({ flowId: 'lookup', depth: 1 });
  });

  it('picks the output with `output:` over the sub-flow state', async () => {
    const picky = flowOf(
      y(
        'id: picky',
        'type: messaging',
        'nodes:',
        '  call:',
        '    flow.call: { flow: lookup, input: { city: message.text, days: 1 }, output: fetch.payload.summary }',
        '    routing: [{ reply: true }]',
      ),
    );
    runtime.on('weather', () => ({ summary: 'windy' }));
    const r = await exec.run(input(packOf([picky, lookup], [weather]), 'picky', 'Lima'));
    expect(texts(r)).toEqual(['windy']);
  });

  it('parks inside the sub-flow and resumes it on the next message', async () => {
    const ask = flowOf(
      y(
        'id: ask_city',
        'type: messaging',
        'nodes:',
        '  q:',
        '    qa.process:',
        '      questions: [{ id: city, prompt: "Which city, {{in.name}}?" }]',
        '    routing: [{ to: done }]',
        '  done:',
        '    templating.handlebars: { text: "{{in.city}}", reply: false }',
      ),
    );
    const outer = flowOf(
      y(
        'id: outer',
        'type: messaging',
        'nodes:',
        '  call:',
        '    flow.call: { flow: ask_city, input: { name: message.userId } }',
        '    routing: [{ to: bye }]',
        '  bye:',
        '    reply: "You chose {{call.payload.text}}"',
      ),
    );
    const pack = packOf([outer, ask]);
    const [first, second] = await converse(exec, pack, 'outer', ['hi', 'Quito']);
    expect(first!.status).toBe('parked');
    expect(texts(first!)).toEqual(['Which city, u1?']);
    expect(first!.snapshot).toEqual({
      packId: 'demo-pack',
      packVersion: '1.2.3',
      flowId: 'outer',
      nodeId: 'call',
      state: { in: {} },
      pending: {
        call: { flowId: 'ask_city', nodeId: 'q', state: { in: { name: 'u1' } }, pending: { question: 0 } },
      },
    });
    expect(second!.status).toBe('completed');
    expect(texts(second!)).toEqual(['You chose Quito']);
  });

  it('stops at the call depth limit, naming the chain of calls', async () => {
    const chain = ['a', 'b', 'c', 'd'].map((id, i, all) =>
      flowOf(
        y(
          `id: ${id}`,
          'type: messaging',
          'nodes:',
          '  step:',
          i + 1 < all.length ? `    flow.call: ${all[i + 1]}` : '    reply: deepest',
        ),
      ),
    );
    const pack = packOf(chain);
    const ok = await exec.run({ ...input(pack, 'a', 'x'), callDepthLimit: 3 });
    expect(texts(ok)).toEqual(['deepest']);
    const r = await exec.run({ ...input(pack, 'a', 'x'), callDepthLimit: 2 });
    expect(r.status).toBe('failed');
    expect(r.error).toEqual({
      code: 'flow_call_depth',
      message:
        "node 'step': flow.call depth limit of 2 exceeded (a -> b -> c -> d) (in sub-flow 'c', called as a -> b -> c)",
      nodeId: 'step',
      flowId: 'c',
    });
    expect(texts(r)).toEqual([DEFAULT_ERROR_REPLY]);
  });

  it('ends a self-calling flow at the default depth limit (the validator refuses such packs)', async () => {
    const again = flowOf(y('id: again', 'type: messaging', 'nodes:', '  call:', '    flow.call: again'));
    const r = await exec.run(input(packOf([again]), 'again', 'x'));
    expect(r.error?.code).toBe('flow_call_depth');
    expect(r.trace).toHaveLength(9);
  });

  it("reports a sub-flow's failure with the failing node and flow, and the caller's error reply", async () => {
    const parent = flowOf(
      y(
        'id: parent',
        'type: messaging',
        'meta: { error_reply: "Parent says sorry." }',
        'nodes:',
        '  call:',
        '    flow.call: { flow: lookup, input: { city: message.text } }',
      ),
    );
    runtime.on('weather', () => {
      throw new ComponentTrapError('boom');
    });
    const r = await exec.run(input(packOf([parent, lookup], [weather]), 'parent', 'Oslo'));
    expect(r.error).toEqual({
      code: 'component_trap',
      message:
        "node 'fetch': component 'weather' failed: boom (in sub-flow 'lookup', called as parent -> lookup)",
      nodeId: 'fetch',
      flowId: 'lookup',
    });
    expect(texts(r)).toEqual(['Parent says sorry.']);
  });

  it('shares the step budget with the sub-flow', async () => {
    const spin = flowOf(
      y(
        'id: spin',
        'type: messaging',
        'nodes:',
        '  a:',
        '    templating.handlebars: { text: a, reply: false }',
        '    routing: [{ to: b }]',
        '  b:',
        '    templating.handlebars: { text: b, reply: false }',
        '    routing: [{ to: a }]',
      ),
    );
    const caller = flowOf(y('id: caller', 'type: messaging', 'nodes:', '  call:', '    flow.call: spin'));
    const r = await exec.run({ ...input(packOf([caller, spin]), 'caller', 'x'), stepLimit: 10 });
    expect(r.error).toMatchObject({ code: 'flow_step_limit', flowId: 'spin' });
    // The call node and nine nodes of the callee: ten executions in all.
    expect(r.trace.filter((t) => t.flowId === 'spin')).toHaveLength(9);
    expect(r.trace).toHaveLength(10);
  });

  it('times the sub-flow out at the node timeout and runs none of its later nodes', async () => {
    const caller = flowOf(
      y(
        'id: caller',
        'type: messaging',
        'nodes:',
        '  call:',
        '    flow.call: { flow: lookup, input: { city: message.text } }',
        '    timeout: { ms: 40 }',
      ),
    );
    let release: (v: unknown) => void = () => undefined;
    runtime.on('weather', () => new Promise((r) => (release = r)));
    const r = await exec.run({
      ...input(packOf([caller, lookup], [weather]), 'caller', 'x'),
      componentDeadlineMs: 5_000,
    });
    expect(r.error).toEqual({
      code: 'node_timeout',
      message: "node 'call': sub-flow 'lookup' did not finish within its timeout of 40 ms",
      nodeId: 'call',
    });
    const traced = r.trace.length;
    release({ summary: 'late' });
    await new Promise((res) => setTimeout(res, 20));
    // The abandoned sub-flow finished its component call but took no further step.
    expect(r.trace.length - traced).toBeLessThanOrEqual(1);
    expect(r.trace.some((t) => t.nodeId === 'summarise')).toBe(false);
  });
});

describe('FlowExecutorService: node timeout and retry policy', () => {
  const slowFlow = (extra: string[] = []) =>
    flowOf(
      y(
        'id: slow',
        'type: messaging',
        'nodes:',
        '  call:',
        '    slow.run: {}',
        ...extra,
        '    routing: [{ to: done }]',
        '  done:',
        '    reply: "done {{call.payload}}"',
      ),
    );
  const slow = prepared('slow', WORLD_V06, ['run']);

  it('fires the node timeout when the component does not answer, and does not retry it', async () => {
    runtime.on('slow', () => new Promise(() => undefined));
    const f = slowFlow(['    timeout: { ms: 30 }', '    retry: { max_attempts: 3, backoff_ms: 1 }']);
    const t0 = performance.now();
    const r = await exec.run({ ...input(packOf([f], [slow]), 'slow', 'x'), componentDeadlineMs: 10_000 });
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(r.status).toBe('failed');
    expect(r.error).toEqual({
      code: 'component_timeout',
      message:
        "node 'call': component 'slow' failed: component 'slow' did not answer within the node's timeout of 30 ms",
      nodeId: 'call',
    });
    expect(runtime.calls).toHaveLength(1);
    expect(runtime.calls[0]!.deadlineMs).toBe(30);
  });

  it('refuses an answer that came back after the deadline (a runtime that blocks the thread)', async () => {
    runtime.on('slow', () => {
      const until = performance.now() + 60;
      while (performance.now() < until) {
        // busy: a synchronous call cannot be interrupted, only judged late
      }
      return 'late';
    });
    const r = await exec.run(input(packOf([slowFlow(['    timeout: { ms: 20 }'])], [slow]), 'slow', 'x'));
    expect(r.error?.code).toBe('component_timeout');
  });

  it('uses the binding retry policy for nodes without their own, and the node policy over it', async () => {
    runtime.on('slow', (_c, attempt) => {
      if (attempt % 10 < 3) throw new ComponentTrapError(`fail ${attempt}`);
      return attempt;
    });
    const pack = packOf([slowFlow()], [slow]);
    const r = await exec.run({ ...input(pack, 'slow', 'x'), defaultRetry: { maxAttempts: 3, backoffMs: 1 } });
    expect(texts(r)).toEqual(['done 3']);
    expect(r.trace[0]).toMatchObject({ nodeId: 'call', ok: true, attempts: 3 });

    runtime.calls.length = 0;
    const own = packOf([slowFlow(['    retry: { max_attempts: 2, backoff_ms: 1 }'])], [slow]);
    const r2 = await exec.run({ ...input(own, 'slow', 'x'), defaultRetry: { maxAttempts: 5, backoffMs: 1 } });
    expect(r2.error?.code).toBe('component_trap');
    expect(runtime.calls).toHaveLength(2);
  });

  it('records inputs and outputs per node with traceDetail, and not without', async () => {
    runtime.on('slow', () => ({ ok: true }));
    const pack = packOf([slowFlow()], [slow]);
    const plain = await exec.run(input(pack, 'slow', 'x'));
    expect(plain.trace[0]).not.toHaveProperty('input');
    const detailed = await exec.run({ ...input(pack, 'slow', 'x'), traceDetail: true });
    expect(detailed.trace.map((t) => [t.nodeId, t.input, t.output])).toEqual([
      ['call', {}, { ok: true }],
      ['done', undefined, { text: 'done [object Object]' }],
    ]);
  });
});
