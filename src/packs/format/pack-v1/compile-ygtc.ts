import type {
  FlowV1,
  FlowV1ComponentRef,
  FlowV1Kind,
  FlowV1Node,
  FlowV1Routing,
  JsonValue,
} from '../../../flows/flow-v1.js';

/**
 * Compiles a `.ygtc` document (already validated by the runner's flow checker) to flow-v1, the way
 * upstream's greentic-flow `compile_flow` treats a legacy document (no `schema_version: 2`): the node's
 * operation key becomes `component.id` and its value `input.mapping`. A `<component>.<operation>` key that
 * names one of the pack's components is resolved the way packc's resolve step would, to
 * `{id: <component>, operation: <operation>}`.
 *
 * flow-v1 has no place for this runner's node hints (`retry`, `timeout`, `when`, `meta`): packs built here
 * keep their `.ygtc` sources next to the IR, and the runner executes those when present.
 */

/** Node keys that are not the operation key (upstream's list plus this runner's hints). */
const NON_OP_KEYS = new Set([
  'routing',
  'telemetry',
  'output',
  'in_map',
  'out_map',
  'err_map',
  'operation',
  'retry',
  'timeout',
  'when',
  'meta',
  'annotations',
]);

/** This runner's flow types → upstream's `FlowKind`; the original is kept in `metadata.extra`. */
const KIND_OF: Record<string, FlowV1Kind> = {
  messaging: 'messaging',
  websocket: 'messaging',
  event: 'event',
  events: 'event',
  pubsub: 'event',
  'component-config': 'component_config',
  component_config: 'component_config',
  job: 'job',
  timer: 'job',
  http: 'http',
  webhook: 'http',
};

export const FLOW_TYPE_EXTRA_KEY = 'greentic.runner.flow_type';

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function json(v: unknown): JsonValue {
  return v === undefined ? null : (JSON.parse(JSON.stringify(v)) as JsonValue);
}

/** upstream `compile_routing`. */
export function compileRouting(raw: unknown): FlowV1Routing {
  if (raw === undefined || raw === null) return { kind: 'end' };
  if (raw === 'out') return { kind: 'end' };
  if (raw === 'reply') return { kind: 'reply' };
  if (!Array.isArray(raw) || raw.length === 0)
    return Array.isArray(raw) ? { kind: 'end' } : { kind: 'custom', value: json(raw) };
  const routes = raw.filter(isRecord);
  const custom: FlowV1Routing = { kind: 'custom', value: json(raw) };
  if (routes.length !== raw.length || routes.some((r) => r['condition'] !== undefined)) return custom;
  if (routes.length === 1) {
    const r = routes[0]!;
    if (r['reply'] === true) return { kind: 'reply' };
    if (r['out'] === true || r['to'] === 'out') return { kind: 'end' };
    if (typeof r['to'] === 'string' && r['status'] === undefined) return { kind: 'next', nodeId: r['to'] };
    return custom;
  }
  const allTo = routes.every(
    (r) => typeof r['to'] === 'string' && r['to'] !== 'out' && r['out'] !== true && r['reply'] !== true,
  );
  if (!allTo) return custom;
  const onStatus: Record<string, string> = {};
  let fallback: string | undefined;
  for (const r of routes) {
    if (typeof r['status'] === 'string') onStatus[r['status']] = r['to'] as string;
    else fallback = r['to'] as string;
  }
  return { kind: 'branch', onStatus, ...(fallback !== undefined ? { default: fallback } : {}) };
}

/** The component a node's operation key names, resolved against the pack's components. */
export function componentRefOf(opKey: string, hasComponent: (id: string) => boolean): FlowV1ComponentRef {
  if (hasComponent(opKey)) return { id: opKey };
  for (let i = opKey.lastIndexOf('.'); i > 0; i = opKey.lastIndexOf('.', i - 1)) {
    const id = opKey.slice(0, i);
    if (hasComponent(id)) return { id, operation: opKey.slice(i + 1) };
  }
  return { id: opKey };
}

export interface CompileInput {
  /** The parsed `.ygtc` document. */
  doc: Record<string, unknown>;
  /** The entry node the runner's loader chose (`start`, else the first node). */
  start: string;
  hasComponent: (id: string) => boolean;
}

export function compileYgtcToFlowV1({ doc, start, hasComponent }: CompileInput): FlowV1 {
  const type = typeof doc['type'] === 'string' ? doc['type'] : 'messaging';
  const kind = KIND_OF[type] ?? 'messaging';
  const nodes: FlowV1Node[] = [];
  const rawNodes = isRecord(doc['nodes']) ? doc['nodes'] : {};
  for (const [id, rawNode] of Object.entries(rawNodes)) {
    const n = isRecord(rawNode) ? rawNode : {};
    const opKeys = Object.keys(n).filter((k) => !NON_OP_KEYS.has(k));
    const opKey = opKeys[opKeys.length - 1] ?? '';
    const component = componentRefOf(opKey, hasComponent);
    if (component.operation === undefined && typeof n['operation'] === 'string')
      component.operation = n['operation'];
    nodes.push({
      id,
      component,
      input: { mapping: json(n['in_map'] ?? n[opKey] ?? {}) },
      output: { mapping: json(n['out_map'] ?? n['output'] ?? {}) },
      routing: compileRouting(n['routing']),
      telemetry: { attributes: {} },
    });
  }
  const params = isRecord(doc['parameters']) ? (json(doc['parameters']) as Record<string, JsonValue>) : {};
  const extra: Record<string, JsonValue> =
    type !== kind ? { ...params, [FLOW_TYPE_EXTRA_KEY]: type } : params;
  return {
    schema_version: 'flow-v1',
    id: String(doc['id']),
    kind,
    entrypoints: { default: start },
    nodes,
    metadata: {
      ...(typeof doc['title'] === 'string' ? { title: doc['title'] } : {}),
      ...(typeof doc['description'] === 'string' ? { description: doc['description'] } : {}),
      tags: Array.isArray(doc['tags']) ? doc['tags'].map(String) : [],
      extra,
    },
  };
}
