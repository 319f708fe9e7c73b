import { describe, expect, it } from 'vitest';
import { ComponentError } from '../common/errors.js';
import type { MessageEnvelope } from '../core/message-envelope.js';
import type { FlowV1, FlowV1Node, FlowV1Routing, JsonValue } from './flow-v1.js';
import type { FlowSnapshot } from '../core/session-store.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import {
  WORLD_V06,
  type ComponentCall,
  type ComponentRuntime,
  type PreparedComponent,
} from '../core/component-runtime.js';
import { FlowExecutorService } from './flow-executor.service.js';
import type { FlowRunInput, FlowRunResult, PackView } from './flow-run.types.js';
import { importFlowV1 } from './flow-v1-import.js';
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

// A component runtime that answers by component name and records every call.
type Handler = (call: ComponentCall) => unknown;

class FakeRuntime implements ComponentRuntime {
  readonly kind = 'fake';
  readonly calls: ComponentCall[] = [];
  constructor(private readonly handlers: Record<string, Handler>) {}
  async prepare(): Promise<PreparedComponent> {
    throw new Error('not used');
  }
  async invoke(_t: TenantCtx, call: ComponentCall): Promise<unknown> {
    this.calls.push(structuredClone(call));
    const h = this.handlers[call.component.name];
    if (!h) throw new Error(`no handler for ${call.component.name}`);
    return h(call);
  }
  async close(): Promise<void> {}
}

function component(name: string, ops: string[], defaultOperation?: string): PreparedComponent {
  return {
    name,
    version: '0.1.0',
    digest: 'a'.repeat(64),
    world: WORLD_V06,
    exports: [],
    operations: ops.map((o) => ({ name: o })),
    ...(defaultOperation ? { defaultOperation } : {}),
  };
}

function node(
  id: string,
  componentId: string,
  routing: FlowV1Routing,
  mapping: JsonValue = {},
  extra: Partial<FlowV1Node> = {},
): FlowV1Node {
  return {
    id,
    component: { id: componentId },
    input: { mapping },
    output: { mapping: {} },
    routing,
    telemetry: { attributes: {} },
    ...extra,
  };
}

function packOf(
  nodes: FlowV1Node[],
  components: PreparedComponent[],
  assets: Record<string, unknown> = {},
  entry?: string,
): PackView {
  const v1: FlowV1 = {
    schema_version: 'flow-v1',
    id: 'main',
    kind: 'messaging',
    entrypoints: entry ? { default: entry } : {},
    nodes,
    metadata: { tags: [], extra: {} },
  };
  const { flow, issues } = importFlowV1(v1, 'manifest.cbor');
  if (!flow) throw new Error(issues.map((i) => i.message).join('\n'));
  const enc = new TextEncoder();
  return {
    id: 'demo',
    version: '1.0.0',
    flows: new Map([[flow.id, flow]]),
    components: new Map(components.map((c) => [c.name, c])),
    assets: new Map(Object.entries(assets).map(([k, v]) => [k, enc.encode(JSON.stringify(v))])),
  };
}

let seq = 0;
function msg(text: string, extra: Partial<MessageEnvelope> = {}): MessageEnvelope {
  seq++;
  return {
    id: `m${seq}`,
    tenant: 'acme',
    env: 'dev',
    team: 'default',
    channel: 'web',
    provider: 'webchat',
    conversationId: 'c1',
    userId: 'u1',
    sessionKey: 'acme:webchat:c1:u1',
    text,
    attachments: [],
    timestamp: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}

const TENANT: TenantCtx = { tenantId: 'acme', envId: 'dev', teamId: 'default' };

function run(
  exec: Executor,
  pack: PackView,
  message: MessageEnvelope,
  snapshot: FlowSnapshot | null = null,
): Promise<FlowRunResult> {
  return exec.run({
    tenant: TENANT,
    message,
    pack,
    flowId: 'main',
    snapshot,
    sessionData: {},
    allowedSecrets: [],
    stepLimit: 20,
    componentDeadlineMs: 1000,
  });
}

describe('flow-v1 execution: mappings and operations', () => {
  it('runs quickstart-app on_message: component.exec with the op in its mapping, Custom next, emit.response', async () => {
    const runtime = new FakeRuntime({
      'component-msg2events': () => ({ event_type: 'greeting', data: { n: 1 } }),
    });
    const exec = executorOn(runtime);
    const pack = packOf(
      [
        node(
          'extract_event',
          'component.exec',
          { kind: 'custom', value: [{ next: 'echo_result' }] },
          {
            component: 'component-msg2events',
            operation: 'extract',
            message: '{{in.input}}',
            source_provider: 'webchat',
          },
        ),
        node(
          'echo_result',
          'emit.response',
          { kind: 'end' },
          {
            messages: [
              { type: 'text', text: 'Received: {{in.input.text}} as {{prev.event_type}} ({{data}})' },
            ],
          },
        ),
      ],
      [component('component-msg2events', ['extract', 'route'])],
      {},
      'extract_event',
    );
    const r = await run(exec, pack, msg('hello'));
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('completed');
    expect(r.replies).toEqual([{ text: 'Received: hello as greeting ({"n":1})' }]);
    const call = runtime.calls[0]!;
    expect(call.operation).toBe('extract');
    // The rendered mapping is the payload, without the component reference; `{{in.input}}` stays an object.
    expect(call.input).toMatchObject({
      operation: 'extract',
      source_provider: 'webchat',
      message: { text: 'hello' },
    });
    expect(call.input).not.toHaveProperty('component');
  });

  it('runs telco-x: the op from the mapping, `{{prev.messages}}` inserted as a list', async () => {
    const runtime = new FakeRuntime({
      'component-telco-present': (c) => ({
        messages: [{ type: 'text', text: `Plans for ${(c.input as { query: string }).query}` }],
      }),
    });
    const pack = packOf(
      [
        node(
          'present',
          'component-telco-present',
          { kind: 'custom', value: [{ next: 'respond' }] },
          {
            component: 'component-telco-present',
            operation: 'present',
            query: '{{in.input.text}}',
          },
        ),
        node('respond', 'emit.response', { kind: 'end' }, { messages: '{{prev.messages}}' }),
      ],
      [component('component-telco-present', ['present'])],
    );
    const r = await run(executorOn(runtime), pack, msg('roaming'));
    expect(r.replies).toEqual([{ text: 'Plans for roaming' }]);
    expect(runtime.calls[0]!.operation).toBe('present');
  });

  it('calls the named op, else the component default_operation, else its only op; never a made-up execute', async () => {
    const runtime = new FakeRuntime({ named: () => ({}), dflt: () => ({}), single: () => ({}) });
    const pack = packOf(
      [
        node(
          'a',
          'named',
          { kind: 'next', nodeId: 'b' },
          {},
          { component: { id: 'named', operation: 'run' } },
        ),
        node('b', 'dflt', { kind: 'next', nodeId: 'c' }),
        node('c', 'single', { kind: 'end' }),
      ],
      // `run` is not among the declared ops (the card component): called anyway, as upstream does.
      [component('named', ['card']), component('dflt', ['x', 'y'], 'y'), component('single', ['only'])],
    );
    const r = await run(executorOn(runtime), pack, msg('go'));
    expect(r.status).toBe('completed');
    expect(runtime.calls.map((c) => [c.component.name, c.operation])).toEqual([
      ['named', 'run'],
      ['dflt', 'y'],
      ['single', 'only'],
    ]);
    expect(runtime.calls.map((c) => c.input)).toEqual([{ operation: 'run' }, {}, {}]);
  });

  it('leaves the operation to the runtime when nothing names one, and fails with its error', async () => {
    const runtime = new FakeRuntime({
      multi: (c) => {
        if (c.operation === undefined)
          throw new ComponentError('operation_required', "component 'multi' has no default operation", 400);
        return {};
      },
    });
    const pack = packOf([node('a', 'multi', { kind: 'end' })], [component('multi', ['x', 'y'])]);
    const r = await run(executorOn(runtime), pack, msg('go'));
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'operation_required', nodeId: 'a' });
  });

  it('reshapes the output with output.mapping and follows Branch on the output status', async () => {
    const runtime = new FakeRuntime({ check: () => ({ result: { status: 'ok', score: 7 } }) });
    const pack = packOf(
      [
        node(
          'check',
          'check',
          { kind: 'branch', onStatus: { ok: 'good', bad: 'poor' }, default: 'poor' },
          {},
          {
            output: { mapping: { status: '{{out.result.status}}', score: '{{out.result.score}}' } },
          },
        ),
        node('good', 'emit.response', { kind: 'end' }, { text: 'good {{prev.score}}' }),
        node('poor', 'emit.response', { kind: 'end' }, { text: 'poor' }),
      ],
      [component('check', ['run'])],
    );
    const r = await run(executorOn(runtime), pack, msg('x'));
    expect(r.replies).toEqual([{ text: 'good 7' }]);
  });

  it('answers with the node output on Reply routing', async () => {
    const runtime = new FakeRuntime({ echo: () => ({ text: 'echoed' }) });
    const pack = packOf([node('a', 'echo', { kind: 'reply' })], [component('echo', ['run'])]);
    const r = await run(executorOn(runtime), pack, msg('x'));
    expect(r.replies).toEqual([{ text: 'echoed' }]);
  });

  it('fails the node on an `{"error": ...}` output, or yields err_map and goes on', async () => {
    const failing = () => ({ error: { code: 'AC_ASSET_NOT_FOUND', message: 'no such card' } });
    const plain = packOf([node('a', 'card', { kind: 'end' })], [component('card', ['card'])]);
    const r = await run(executorOn(new FakeRuntime({ card: failing })), plain, msg('x'));
    expect(r.status).toBe('failed');
    expect(r.error).toEqual({
      code: 'AC_ASSET_NOT_FOUND',
      message: "node 'a': component 'card' failed: no such card",
      nodeId: 'a',
    });
    const mapped = packOf(
      [
        node(
          'a',
          'card',
          { kind: 'next', nodeId: 'b' },
          {},
          { err_map: { mapping: { failed: '{{error.code}}' } } },
        ),
        node('b', 'emit.response', { kind: 'end' }, { text: 'fallback after {{prev.failed}}' }),
      ],
      [component('card', ['card'])],
    );
    const r2 = await run(executorOn(new FakeRuntime({ card: failing })), mapped, msg('x'));
    expect(r2.replies).toEqual([{ text: 'fallback after AC_ASSET_NOT_FOUND' }]);
  });

  it('runs .ygtc built-ins a compiler left as component.exec + operation (qa.process), answers kept across turns', async () => {
    const pack = packOf(
      [
        node(
          'ask',
          'component.exec',
          { kind: 'next', nodeId: 'greet' },
          {
            welcome: 'Hi!',
            questions: [{ id: 'name', prompt: 'Your name?', answer_type: 'text' }],
          },
          { component: { id: 'component.exec', operation: 'qa.process' } },
        ),
        node('greet', 'emit.response', { kind: 'end' }, { text: 'Hello {{in.name}} ({{in.input.text}})' }),
      ],
      [],
    );
    const exec = executorOn(new FakeRuntime({}));
    const first = await run(exec, pack, msg('hey'));
    expect(first).toMatchObject({ status: 'parked', replies: [{ text: 'Hi!' }, { text: 'Your name?' }] });
    const second = await run(exec, pack, msg('Ada'), first.snapshot);
    expect(second).toMatchObject({ status: 'completed', replies: [{ text: 'Hello Ada (Ada)' }] });
  });

  it('fails a message bound to an empty flow with flow_empty', async () => {
    const r = await run(executorOn(new FakeRuntime({})), packOf([], []), msg('x'));
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('flow_empty');
  });
});

describe('flow-v1 execution: cards, Submit and i18n', () => {
  const CARD_CONFIG = (asset: string) => ({
    component: 'oci://ghcr.io/greenticai/components/component-adaptive-card@sha256:00',
    config: {
      default_source: 'asset',
      default_card_asset: asset,
      default_card_inline: null,
      multilingual: true,
    },
  });
  const ASSETS = {
    'assets/cards/welcome.json': {
      type: 'AdaptiveCard',
      body: [{ type: 'TextBlock', text: '{{i18n:card.welcome}}' }],
    },
    'assets/cards/about.json': { type: 'AdaptiveCard', body: [{ type: 'TextBlock', text: 'About' }] },
    'assets/i18n/en.json': { 'card.welcome': 'Welcome', 'card.bye': 'Bye' },
    'assets/i18n/de.json': { 'card.welcome': 'Willkommen' },
    'assets/i18n/locales.json': ['en', 'de'],
  };
  /** Renders the card the runner inlined, leaving i18n tokens to the runner (as a card without bundles would). */
  const cardComponent = (c: ComponentCall) => {
    const spec = (c.input as { card_spec: { inline_json: Record<string, unknown> } }).card_spec;
    return { renderedCard: spec.inline_json, event: null, validationIssues: [] };
  };
  const CARD = 'ai.greentic.component-adaptive-card';

  it('shows one card per turn: the session parks after each card and the next message goes on', async () => {
    const runtime = new FakeRuntime({ [CARD]: cardComponent });
    const exec = executorOn(runtime);
    const pack = packOf(
      [
        node(
          'show_welcome',
          CARD,
          { kind: 'next', nodeId: 'show_about' },
          CARD_CONFIG('assets/cards/welcome.json'),
          {
            component: { id: CARD, operation: 'run' },
          },
        ),
        node('show_about', CARD, { kind: 'end' }, CARD_CONFIG('assets/cards/about.json'), {
          component: { id: CARD, operation: 'run' },
        }),
      ],
      [component(CARD, ['card'])],
      ASSETS,
      'show_welcome',
    );
    const first = await run(exec, pack, msg('hi', { locale: 'de-CH' }));
    expect(first.status).toBe('parked');
    expect(first.snapshot).toMatchObject({ flowId: 'main', nodeId: 'show_welcome', pending: { card: true } });
    // `{{i18n:…}}` resolved from the pack's strings by the message locale (de-CH → de).
    expect(first.replies).toEqual([
      { card: { type: 'AdaptiveCard', body: [{ type: 'TextBlock', text: 'Willkommen' }] } },
    ]);
    // The card asset was inlined, with the i18n bundles and the locale, as upstream's runner does.
    expect(runtime.calls[0]!.input).toMatchObject({
      operation: 'run',
      card_source: 'inline',
      card_spec: {
        asset_path: 'assets/cards/welcome.json',
        inline_json: ASSETS['assets/cards/welcome.json'],
        i18n_inline: {
          de: { 'card.welcome': 'Willkommen' },
          en: { 'card.welcome': 'Welcome', 'card.bye': 'Bye' },
        },
      },
      locale: 'de-CH',
    });
    expect(runtime.calls[0]!.ctx.locale).toBe('de-CH');

    const second = await run(
      exec,
      pack,
      msg('', { action: { type: 'value', action: 'next' } }),
      first.snapshot,
    );
    expect(second.status).toBe('completed');
    expect(second.replies).toEqual([{ card: ASSETS['assets/cards/about.json'] }]);
    expect(runtime.calls).toHaveLength(2);
  });

  it('routes a Submit by `response.*` (Custom conditions) and by routeToCardId', async () => {
    const runtime = new FakeRuntime({ [CARD]: cardComponent });
    const exec = executorOn(runtime);
    const pack = packOf(
      [
        node(
          'menu',
          CARD,
          {
            kind: 'custom',
            value: [{ condition: 'response.action == "about_card"', to: 'about' }, { to: 'bye' }],
          },
          CARD_CONFIG('assets/cards/welcome.json'),
        ),
        node('about', 'emit.response', { kind: 'end' }, { text: 'about {{response.action}}' }),
        node('bye', 'emit.response', { kind: 'end' }, { text: '{{i18n:card.bye}}, {{in.input.text}}' }),
      ],
      [component(CARD, ['card'])],
      ASSETS,
    );
    const parked = await run(exec, pack, msg('start'));
    expect(parked.status).toBe('parked');

    const about = await run(
      exec,
      pack,
      msg('', { action: { type: 'value', action: 'about_card' } }),
      parked.snapshot,
    );
    expect(about.replies).toEqual([{ text: 'about about_card' }]);

    const typed = await run(exec, pack, msg('ciao', { locale: 'it' }), parked.snapshot);
    expect(typed.replies).toEqual([{ text: 'Bye, ciao' }]);

    const nav = await run(
      exec,
      pack,
      msg('', { action: { type: 'value', action: 'about_card', routeToCardId: 'bye' } }),
      parked.snapshot,
    );
    expect(nav.replies).toEqual([{ text: 'Bye, ' }]);
  });

  it('answers a Submit whose routeToCardId names a card asset with that card, the session left parked', async () => {
    const runtime = new FakeRuntime({ [CARD]: cardComponent });
    const exec = executorOn(runtime);
    const pack = packOf(
      [
        node('menu', CARD, { kind: 'next', nodeId: 'bye' }, CARD_CONFIG('assets/cards/welcome.json')),
        node('bye', 'emit.response', { kind: 'end' }, { text: 'bye' }),
      ],
      [component(CARD, ['card'])],
      ASSETS,
    );
    const parked = await run(exec, pack, msg('start'));
    const about = await run(
      exec,
      pack,
      msg('', { locale: 'de', action: { type: 'value', action_id: 'x', routeToCardId: 'welcome' } }),
      parked.snapshot,
    );
    expect(about.status).toBe('parked');
    expect(about.snapshot).toEqual(parked.snapshot);
    expect(about.replies).toEqual([
      { card: { type: 'AdaptiveCard', body: [{ type: 'TextBlock', text: 'Willkommen' }] } },
    ]);
    expect(runtime.calls).toHaveLength(1);
    // A name that is neither a node nor a card asset: the message is the card's answer as usual.
    const on = await run(exec, pack, msg('', { action: { routeToCardId: 'nothing' } }), parked.snapshot);
    expect(on.replies).toEqual([{ text: 'bye' }]);
  });

  it('does not park after a card that ends the flow', async () => {
    const runtime = new FakeRuntime({ [CARD]: cardComponent });
    const pack = packOf(
      [node('only', CARD, { kind: 'end' }, CARD_CONFIG('assets/cards/about.json'))],
      [component(CARD, ['card'])],
      ASSETS,
    );
    const r = await run(executorOn(runtime), pack, msg('hi'));
    expect(r.status).toBe('completed');
    expect(r.replies).toEqual([{ card: ASSETS['assets/cards/about.json'] }]);
  });

  it('turns emit.response card envelopes (metadata.adaptive_card) into card replies', async () => {
    const card = { type: 'AdaptiveCard', version: '1.5', body: [] };
    const pack = packOf(
      [
        node(
          'say',
          'emit.response',
          { kind: 'end' },
          { messages: [{ text: 'Title', metadata: { adaptive_card: JSON.stringify(card) } }] },
        ),
      ],
      [],
    );
    const r = await run(executorOn(new FakeRuntime({})), pack, msg('x'));
    expect(r.replies).toEqual([{ text: 'Title', card }]);
  });

  it('parks on session.wait and resumes on the next message', async () => {
    const pack = packOf(
      [
        node('ask', 'emit.response', { kind: 'next', nodeId: 'wait' }, { text: 'Your name?' }),
        node('wait', 'session.wait', { kind: 'next', nodeId: 'greet' }),
        node('greet', 'emit.response', { kind: 'end' }, { text: 'Hello {{response.text}}' }),
      ],
      [],
    );
    const exec = executorOn(new FakeRuntime({}));
    const first = await run(exec, pack, msg('hi'));
    expect(first).toMatchObject({ status: 'parked', replies: [{ text: 'Your name?' }] });
    const second = await run(exec, pack, msg('Ada'), first.snapshot);
    expect(second).toMatchObject({ status: 'completed', replies: [{ text: 'Hello Ada' }] });
  });
});
