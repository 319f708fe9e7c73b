import {
  customRouteEntries,
  effectiveComponentId,
  effectiveOperation,
  isBuiltinComponentId,
  isComponentExecId,
  type FlowV1,
  type FlowV1Node,
  type FlowV1Routing,
  type JsonValue,
} from './flow-v1.js';
import type { FlowDefinition, FlowIssue, FlowNode, NodeCall, RouteRule, SourceLoc } from './flow.types.js';

/**
 * Loads a pack-v1 flow (upstream's flow-v1 IR, as the pack reader decodes it) into the runner's
 * flow IR, the same `FlowDefinition` a `.ygtc` file compiles to, so one executor runs both. Every
 * node becomes a `NodeCall` (component, operation, input/output mapping); routing becomes route
 * rules: `Next` a `to`, `End` an `out`, `Reply` a `reply`, `Branch` one rule per status plus the
 * default, `Custom` its raw list of `{to|next, condition, status, out, reply}` entries (packc-built
 * packs write `[{"next": "<node>"}]` there).
 *
 * Problems name the flow and the node (`file` is the pack's manifest; CBOR has no line numbers).
 */

export interface FlowV1ImportResult {
  /** Absent when the flow has errors. */
  flow?: FlowDefinition;
  issues: FlowIssue[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isEmptyMapping(v: JsonValue | undefined): boolean {
  return v === undefined || v === null || (isRecord(v) && Object.keys(v).length === 0);
}

/** Is this builtin one the executor runs (`emit.*`, `session.wait`, `flow.call`)? */
export function isSupportedBuiltin(id: string): boolean {
  return id.startsWith('emit.') || id === 'session.wait' || id === 'flow.call';
}

/** The sub-flow a flow-v1 `flow.call` node names: `flow_id` (upstream) or `flow`. */
export function v1CallTarget(mapping: unknown): string | undefined {
  if (!isRecord(mapping)) return undefined;
  const f = mapping['flow_id'] ?? mapping['flow'];
  return typeof f === 'string' && f !== '' ? f : undefined;
}

/**
 * @param file where the flow came from, for issues (e.g. `packs/demo.gtpack!manifest.cbor`).
 */
export function importFlowV1(v1: FlowV1, file: string): FlowV1ImportResult {
  const issues: FlowIssue[] = [];
  const loc: SourceLoc = { file, line: 1, column: 1 };
  const issue = (severity: FlowIssue['severity'], code: string, message: string): void => {
    issues.push({ severity, code, message: `flow '${v1.id}': ${message}`, ...loc });
  };

  const nodes = new Map<string, FlowNode>();
  for (const n of v1.nodes) {
    if (nodes.has(n.id)) {
      issue('error', 'duplicate_node', `node '${n.id}' is defined twice`);
      continue;
    }
    const node = importNode(n, loc, issue);
    if (node) nodes.set(n.id, node);
  }
  if (v1.nodes.length === 0) {
    issue('warning', 'flow_empty', 'has no nodes: a message bound to it fails with flow_empty');
  }

  for (const node of nodes.values()) {
    node.routing.forEach((r) => {
      if (r.to !== undefined && !nodes.has(r.to)) {
        issue('error', 'unknown_route_target', `node '${node.id}' routes to unknown node '${r.to}'`);
      }
    });
    const target = node.call?.component === 'flow.call' ? v1CallTarget(node.call.input) : undefined;
    if (node.call?.component === 'flow.call' && target === undefined) {
      issue(
        'error',
        'invalid_config',
        `node '${node.id}': flow.call needs 'flow_id: <flow id>' in its input mapping`,
      );
    }
  }

  const entrypoints: Record<string, string> = {};
  for (const [name, value] of Object.entries(v1.entrypoints)) {
    if (typeof value !== 'string') continue;
    if (nodes.has(value)) entrypoints[name] = value;
    else issue('error', 'unknown_start', `entrypoint '${name}' names unknown node '${value}'`);
  }
  const start = entrypoints['default'] ?? v1.nodes[0]?.id ?? '';

  if (issues.some((i) => i.severity === 'error')) return { issues };
  const extra = v1.metadata.extra;
  const flow: FlowDefinition = {
    id: v1.id,
    type: v1.kind,
    start,
    parameters: isRecord(extra) ? extra : {},
    nodes,
    file,
    raw: v1 as unknown as Record<string, unknown>,
    dialect: 'flow-v1',
    entrypoints,
    schemaVersion: v1.schema_version,
  };
  if (v1.metadata.title !== undefined) flow.title = v1.metadata.title;
  if (v1.metadata.description !== undefined) flow.description = v1.metadata.description;
  if (v1.metadata.tags.length > 0) flow.tags = [...v1.metadata.tags];
  return { flow, issues };
}

/**
 * The `.ygtc` built-ins a compiled flow carries as `component.exec` + operation (greentic-flow's
 * compiler), or upstream's `questions` builtin (the same payload as `qa.process`): they run as the
 * runner's built-in nodes, with their `.ygtc` payload.
 */
const YGTC_BUILTINS: Readonly<Record<string, string>> = {
  'qa.process': 'qa.process',
  questions: 'qa.process',
  'templating.handlebars': 'templating.handlebars',
  reply: 'reply',
  emit: 'emit',
};

function ygtcBuiltinOf(n: FlowV1Node): string | undefined {
  const id = n.component.id;
  if (YGTC_BUILTINS[id] !== undefined && n.component.operation === undefined) return YGTC_BUILTINS[id];
  if (!isComponentExecId(id) || effectiveComponentId(n) !== undefined) return undefined;
  const op = n.component.operation;
  return op !== undefined ? YGTC_BUILTINS[op] : undefined;
}

function importNode(
  n: FlowV1Node,
  loc: SourceLoc,
  issue: (severity: FlowIssue['severity'], code: string, message: string) => void,
): FlowNode | undefined {
  const builtin = ygtcBuiltinOf(n);
  if (builtin !== undefined) {
    const routing = importRouting(n.id, n.routing, issue);
    return routing && { id: n.id, operation: builtin, config: n.input.mapping, routing, loc };
  }
  const component = effectiveComponentId(n);
  if (component === undefined) {
    issue(
      'error',
      'missing_component',
      `node '${n.id}' names no component (component.id '${n.component.id}' and no input.mapping.component)`,
    );
    return undefined;
  }
  if (isBuiltinComponentId(component) && !isSupportedBuiltin(component)) {
    issue(
      'warning',
      'unsupported_builtin',
      `node '${n.id}' uses upstream builtin '${component}', which this runner does not run: the node fails when reached`,
    );
  }
  const call: NodeCall = { component, input: n.input.mapping };
  const operation = effectiveOperation(n);
  if (operation !== undefined) call.operation = operation;
  if (n.component.pack_alias !== undefined) call.packAlias = n.component.pack_alias;
  if (!isEmptyMapping(n.output.mapping)) call.output = n.output.mapping;
  if (n.err_map !== undefined && !isEmptyMapping(n.err_map.mapping)) call.errMap = n.err_map.mapping;

  const routing = importRouting(n.id, n.routing, issue);
  if (routing === undefined) return undefined;
  const node: FlowNode = {
    id: n.id,
    // What traces, spans and graphs show; execution reads `call`.
    operation: component,
    config: n.input.mapping,
    routing,
    call,
    loc,
  };
  const attrs = n.telemetry.attributes;
  if (Object.keys(attrs).length > 0) node.meta = { telemetry: { attributes: attrs } };
  return node;
}

function importRouting(
  nodeId: string,
  routing: FlowV1Routing,
  issue: (severity: FlowIssue['severity'], code: string, message: string) => void,
): RouteRule[] | undefined {
  switch (routing.kind) {
    case 'next':
      return [{ to: routing.nodeId }];
    case 'end':
      return [{ out: true }];
    case 'reply':
      return [{ reply: true }];
    case 'branch': {
      const rules: RouteRule[] = Object.entries(routing.onStatus).map(([status, to]) => ({ status, to }));
      rules.push(routing.default !== undefined ? { to: routing.default } : { out: true });
      return rules;
    }
    case 'custom': {
      const value = routing.value;
      const entries = customRouteEntries(Array.isArray(value) ? value : isRecord(value) ? [value] : value);
      if (entries === undefined) {
        issue(
          'error',
          'invalid_route',
          `node '${nodeId}': custom routing ${JSON.stringify(value)} is not a list of {to|next, condition, status, out, reply}`,
        );
        return undefined;
      }
      return entries.map((e) => {
        const rule: RouteRule = {};
        if (e.out) rule.out = true;
        else if (e.reply) rule.reply = true;
        else if (e.to !== undefined) rule.to = e.to;
        if (e.status !== undefined) rule.status = e.status;
        if (e.condition !== undefined) rule.condition = e.condition;
        if (rule.to === undefined && !rule.out && !rule.reply) rule.out = true;
        return rule;
      });
    }
  }
}
