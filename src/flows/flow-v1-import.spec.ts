import { describe, expect, it } from 'vitest';
import type { FlowV1, FlowV1Node, FlowV1Routing, JsonValue } from './flow-v1.js';
import { flowGraph } from './flow-graph.js';
import { importFlowV1 } from './flow-v1-import.js';

const FILE = 'packs/demo.gtpack!manifest.cbor';

function node(
  id: string,
  component: string,
  routing: FlowV1Routing,
  extra: Partial<FlowV1Node> = {},
): FlowV1Node {
  return {
    id,
    component: { id: component },
    input: { mapping: {} },
    output: { mapping: {} },
    routing,
    telemetry: { attributes: {} },
    ...extra,
  };
}

function flow(nodes: FlowV1Node[], entrypoints: Record<string, JsonValue> = {}): FlowV1 {
  return {
    schema_version: 'flow-v1',
    id: 'main',
    kind: 'messaging',
    entrypoints,
    nodes,
    metadata: { tags: [], extra: { greeting: 'hi' } },
  };
}

describe('importFlowV1: flow-v1 IR into the runner IR', () => {
  it('turns every routing variant into route rules', () => {
    const { flow: f, issues } = importFlowV1(
      flow([
        node('a', 'comp', { kind: 'next', nodeId: 'b' }),
        node('b', 'comp', { kind: 'branch', onStatus: { ok: 'c', retry: 'a' }, default: 'd' }),
        node('c', 'comp', { kind: 'reply' }),
        node('d', 'comp', { kind: 'custom', value: [{ next: 'e' }] }),
        node('e', 'comp', {
          kind: 'custom',
          value: [{ condition: 'response.action == "about"', to: 'c' }, { to: 'out' }],
        }),
        node('f', 'comp', { kind: 'branch', onStatus: { ok: 'a' } }),
        node('g', 'comp', { kind: 'end' }),
      ]),
      FILE,
    );
    expect(issues).toEqual([]);
    const routing = (id: string) => f!.nodes.get(id)!.routing;
    expect(routing('a')).toEqual([{ to: 'b' }]);
    expect(routing('b')).toEqual([{ status: 'ok', to: 'c' }, { status: 'retry', to: 'a' }, { to: 'd' }]);
    expect(routing('c')).toEqual([{ reply: true }]);
    expect(routing('d')).toEqual([{ to: 'e' }]);
    expect(routing('e')).toEqual([{ to: 'c', condition: 'response.action == "about"' }, { out: true }]);
    expect(routing('f')).toEqual([{ status: 'ok', to: 'a' }, { out: true }]);
    expect(routing('g')).toEqual([{ out: true }]);
  });

  it('finds the component and operation the three upstream node shapes name', () => {
    const { flow: f } = importFlowV1(
      flow([
        // 1. resolved component with an operation (card packs)
        node(
          'card',
          'ai.greentic.component-adaptive-card',
          { kind: 'end' },
          {
            component: { id: 'ai.greentic.component-adaptive-card', operation: 'run' },
            input: {
              mapping: { component: 'oci://ghcr.io/x@sha256:00', config: { default_source: 'asset' } },
            },
          },
        ),
        // 2. resolved component, the operation in the mapping (telco-x)
        node(
          'present',
          'component-telco-present',
          { kind: 'end' },
          {
            input: { mapping: { component: 'component-telco-present', operation: 'present' } },
          },
        ),
        // 3. the component.exec placeholder: component and operation in the mapping (quickstart-app)
        node(
          'extract',
          'component.exec',
          { kind: 'end' },
          {
            input: { mapping: { component: 'component-msg2events', operation: 'extract' } },
          },
        ),
        node(
          'say',
          'emit.response',
          { kind: 'end' },
          { input: { mapping: { messages: '{{prev.messages}}' } } },
        ),
      ]),
      FILE,
    );
    const call = (id: string) => f!.nodes.get(id)!.call;
    expect(call('card')).toMatchObject({
      component: 'ai.greentic.component-adaptive-card',
      operation: 'run',
    });
    expect(call('present')).toMatchObject({ component: 'component-telco-present', operation: 'present' });
    expect(call('extract')).toMatchObject({ component: 'component-msg2events', operation: 'extract' });
    expect(call('say')).toEqual({ component: 'emit.response', input: { messages: '{{prev.messages}}' } });
    expect(f!.nodes.get('card')!.operation).toBe('ai.greentic.component-adaptive-card');
  });

  it("draws an imported flow with each node's component and operation", () => {
    const { flow: f } = importFlowV1(
      flow([
        node(
          'card',
          'ai.greentic.component-adaptive-card',
          { kind: 'next', nodeId: 'sub' },
          {
            component: { id: 'ai.greentic.component-adaptive-card', operation: 'run' },
          },
        ),
        node(
          'sub',
          'flow.call',
          { kind: 'next', nodeId: 'say' },
          { input: { mapping: { flow_id: 'other' } } },
        ),
        node('say', 'emit.response', { kind: 'end' }),
      ]),
      FILE,
    );
    const g = flowGraph(f!);
    expect(g.nodes.map((n) => [n.id, n.kind, n.target])).toEqual([
      ['card', 'component', 'ai.greentic.component-adaptive-card.run'],
      ['sub', 'call', 'flow other'],
      ['say', 'message', undefined],
    ]);
    expect(g.edges).toEqual([
      { from: 'card', to: 'sub', rule: 1 },
      { from: 'sub', to: 'say', rule: 1 },
      { from: 'say', end: 'out', rule: 1 },
    ]);
  });

  it('starts at entrypoints.default, else at the first node, and keeps metadata', () => {
    const nodes = [node('one', 'c', { kind: 'next', nodeId: 'two' }), node('two', 'c', { kind: 'end' })];
    const named = importFlowV1(flow(nodes, { default: 'two', telegram: 'one' }), FILE).flow!;
    expect(named.start).toBe('two');
    expect(named.entrypoints).toEqual({ default: 'two', telegram: 'one' });
    expect(named.dialect).toBe('flow-v1');
    expect(named.parameters).toEqual({ greeting: 'hi' });
    expect(importFlowV1(flow(nodes), FILE).flow!.start).toBe('one');
  });

  it('refuses what cannot run, naming the flow and the node', () => {
    const { flow: f, issues } = importFlowV1(
      flow([
        node('a', 'comp', { kind: 'next', nodeId: 'nowhere' }),
        node('b', 'component.exec', { kind: 'end' }),
        node('c', 'comp', { kind: 'custom', value: 'sideways' }),
        node('d', 'flow.call', { kind: 'end' }, { input: { mapping: { input: {} } } }),
        node('a', 'comp', { kind: 'end' }),
      ]),
      FILE,
    );
    expect(f).toBeUndefined();
    expect(issues.map((i) => [i.severity, i.code, i.file, i.message])).toEqual([
      [
        'error',
        'missing_component',
        FILE,
        "flow 'main': node 'b' names no component (component.id 'component.exec' and no input.mapping.component)",
      ],
      [
        'error',
        'invalid_route',
        FILE,
        `flow 'main': node 'c': custom routing "sideways" is not a list of {to|next, condition, status, out, reply}`,
      ],
      ['error', 'duplicate_node', FILE, "flow 'main': node 'a' is defined twice"],
      ['error', 'unknown_route_target', FILE, "flow 'main': node 'a' routes to unknown node 'nowhere'"],
      [
        'error',
        'invalid_config',
        FILE,
        "flow 'main': node 'd': flow.call needs 'flow_id: <flow id>' in its input mapping",
      ],
    ]);
  });

  it('keeps an empty flow (two upstream demo packs ship them) with a warning, and warns about unsupported builtins', () => {
    const empty = importFlowV1(flow([]), FILE);
    expect(empty.flow!.nodes.size).toBe(0);
    expect(empty.issues).toEqual([expect.objectContaining({ severity: 'warning', code: 'flow_empty' })]);
    const agent = importFlowV1(flow([node('a', 'dw.agent', { kind: 'end' })]), FILE);
    expect(agent.flow).toBeDefined();
    expect(agent.issues).toEqual([
      expect.objectContaining({
        severity: 'warning',
        code: 'unsupported_builtin',
        message:
          "flow 'main': node 'a' uses upstream builtin 'dw.agent', which this runner does not run: the node fails when reached",
      }),
    ]);
  });
});
