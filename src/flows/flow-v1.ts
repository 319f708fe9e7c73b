/**
 * The flow-v1 IR as upstream Greentic ships it inside a pack-v1 `manifest.cbor` (greentic-types `Flow`),
 * after the reader has resolved every symbol index back to its name. The pack format owns this model; the
 * flow executor consumes it (`PackContents.flowsV1`).
 *
 * JSON values inside mappings, entrypoints and metadata stay opaque (`JsonValue`): upstream treats them as
 * `serde_json::Value`, and templates such as `{{in.input.text}}` are interpreted by the executor, not here.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** `FlowKind` (snake_case on the wire). */
export type FlowV1Kind = 'messaging' | 'event' | 'component_config' | 'job' | 'http';

export const FLOW_V1_KINDS: readonly FlowV1Kind[] = ['messaging', 'event', 'component_config', 'job', 'http'];

/** `ComponentRef`: which component a node calls, and which of its operations. */
export interface FlowV1ComponentRef {
  /** Component id (e.g. `ai.greentic.component-adaptive-card`), or a builtin id (`emit.response`, `component.exec`). */
  id: string;
  /** Alias of a dependency pack the component comes from; absent when it is this pack's. */
  pack_alias?: string;
  /** Operation name; absent when upstream left it in `input.mapping.operation` or expects the default operation. */
  operation?: string;
}

/** `InputMapping` / `OutputMapping`: an opaque JSON template evaluated by the executor. */
export interface FlowV1Mapping {
  mapping: JsonValue;
}

/**
 * `Routing` (externally tagged, PascalCase on the pack wire, snake_case in the JSON form).
 * `custom` keeps upstream's raw payload verbatim — packc-built packs carry `[{"next": "<node name>"}]` there,
 * and the ygtc dialect also uses `{to, status, condition, out, reply}` entries (see `customRouteEntries`).
 */
export type FlowV1Routing =
  | { kind: 'next'; nodeId: string }
  | { kind: 'branch'; onStatus: Record<string, string>; default?: string }
  | { kind: 'end' }
  | { kind: 'reply' }
  | { kind: 'custom'; value: JsonValue };

/** `TelemetryHints`. */
export interface FlowV1Telemetry {
  span_name?: string;
  attributes: Record<string, string>;
  sampling?: string;
}

/** `Node`; node order in `FlowV1.nodes` is significant (the first node is the implicit ingress). */
export interface FlowV1Node {
  /** The node's name (`symbols.node_ids[index]` on the wire). */
  id: string;
  component: FlowV1ComponentRef;
  input: FlowV1Mapping;
  output: FlowV1Mapping;
  /** `err_map`; absent in older packs, `null` on the wire in newer ones. */
  err_map?: FlowV1Mapping;
  routing: FlowV1Routing;
  telemetry: FlowV1Telemetry;
}

/** `FlowMetadata`. */
export interface FlowV1Metadata {
  title?: string;
  description?: string;
  tags: string[];
  extra: JsonValue;
}

/** `Flow` (`schema_version` is `"flow-v1"` in every real pack). */
export interface FlowV1 {
  schema_version: string;
  id: string;
  kind: FlowV1Kind;
  /** Entry names to a free JSON value; in every real pack the value is a node name (`{"default": "show_card_3"}`). */
  entrypoints: Record<string, JsonValue>;
  nodes: FlowV1Node[];
  metadata: FlowV1Metadata;
}

/** A manifest `flows[]` entry: the flow plus the pack-level tags/entrypoints that select it. */
export interface FlowV1Entry {
  id: string;
  kind: FlowV1Kind;
  flow: FlowV1;
  /** `"default"` marks the pack's default flow of its kind. */
  tags: string[];
  entrypoints: string[];
}

/** Component ids the runner handles itself (greentic-types `is_builtin_component_id`); they have no wasm. */
const BUILTIN_PREFIXES = [
  'session.wait',
  'flow.call',
  'provider.invoke',
  'dw.agent',
  'dw.agent_graph',
  'sorla.call',
  'operala.call',
  'agentic.call',
];

export function isBuiltinComponentId(id: string): boolean {
  if (id.startsWith('emit.')) return true;
  return BUILTIN_PREFIXES.some((p) => id === p || id.startsWith(`${p}.`));
}

/** Placeholder ids upstream's compiler leaves when the real component sits in `input.mapping.component`. */
export function isComponentExecId(id: string): boolean {
  return id === '' || id === 'component.exec';
}

function mappingString(mapping: JsonValue, key: string): string | undefined {
  if (mapping === null || typeof mapping !== 'object' || Array.isArray(mapping)) return undefined;
  const v = mapping[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * The component a node really calls: `component.id`, unless it is the `component.exec` placeholder, in which
 * case `input.mapping.component` (packc leaves unresolved `component.exec` nodes that way). For a builtin
 * placeholder the operation string is the builtin's id (`Node::is_builtin`).
 */
export function effectiveComponentId(node: FlowV1Node): string | undefined {
  if (!isComponentExecId(node.component.id)) return node.component.id;
  const fromMapping = mappingString(node.input.mapping, 'component');
  if (fromMapping !== undefined) return fromMapping;
  const op = node.component.operation;
  return op !== undefined && isBuiltinComponentId(op) ? op : undefined;
}

/** The operation a node names: `component.operation`, else `input.mapping.operation`; undefined = default op. */
export function effectiveOperation(node: FlowV1Node): string | undefined {
  return node.component.operation ?? mappingString(node.input.mapping, 'operation');
}

/** True when the node calls a runner builtin rather than a pack component. */
export function isBuiltinNode(node: FlowV1Node): boolean {
  const id = effectiveComponentId(node);
  return id !== undefined && isBuiltinComponentId(id);
}

/** One entry of a `custom` routing list, normalised: `next` is accepted as an alias of `to` (packc demo packs). */
export interface FlowV1CustomRoute {
  to?: string;
  status?: string;
  condition?: string;
  out: boolean;
  reply: boolean;
}

/** Reads a `custom` routing payload as route entries; undefined when it is not a list of objects. */
export function customRouteEntries(value: JsonValue): FlowV1CustomRoute[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: FlowV1CustomRoute[] = [];
  for (const item of value) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return undefined;
    const str = (k: string): string | undefined =>
      typeof item[k] === 'string' ? (item[k] as string) : undefined;
    const to = str('to') ?? str('next');
    out.push({
      ...(to !== undefined ? { to } : {}),
      ...(str('status') !== undefined ? { status: str('status') } : {}),
      ...(str('condition') !== undefined ? { condition: str('condition') } : {}),
      out: item.out === true || to === 'out',
      reply: item.reply === true,
    });
  }
  return out;
}

/**
 * The node a flow starts at for an entry name: `entrypoints[name]` when it names a node, else the first node
 * (upstream's implicit ingress). Undefined for an empty flow (two upstream demo packs ship those).
 */
export function entryNode(flow: FlowV1, entry = 'default'): FlowV1Node | undefined {
  const target = flow.entrypoints[entry];
  if (typeof target === 'string') {
    const node = flow.nodes.find((n) => n.id === target);
    if (node) return node;
  }
  return flow.nodes[0];
}
