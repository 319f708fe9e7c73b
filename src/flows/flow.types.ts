/** Where something stands in a `.ygtc` file; 1-based line and column. */
export interface SourceLoc {
  file: string;
  line: number;
  column: number;
}

export interface RouteRule {
  to?: string;
  /** Ends the flow. */
  out?: boolean;
  /** Ends the flow, sending what the node produced as a reply. */
  reply?: boolean;
  /** Taken only when the node's output has this `status` (flow-v1 `Branch.on_status`). */
  status?: string;
  /** Expression over the flow state; the first rule whose condition holds is taken. */
  condition?: string;
  loc?: SourceLoc;
}

/**
 * A node that calls a component (or a runner builtin such as `emit.response`) the flow-v1 way: an
 * operation, an input mapping and an output mapping of `{{...}}` templates (greentic-types `Node`).
 * Pack-v1 flows hold only such nodes; `.ygtc` nodes keep their operation key and config instead.
 */
export interface NodeCall {
  /** The component id the node really calls, or a builtin id (`emit.response`, `session.wait`, `flow.call`). */
  component: string;
  /** The operation the flow names (`component.operation`, else `input.mapping.operation`). */
  operation?: string;
  packAlias?: string;
  /** `input.mapping`: JSON whose strings may hold `{{in.input.text}}`-style templates. */
  input: unknown;
  /** `output.mapping` when it is not empty: reshapes the component's output. */
  output?: unknown;
  /** `err_map`: what the node yields instead of failing when the component fails. */
  errMap?: unknown;
}

export interface RetryPolicy {
  maxAttempts: number;
  backoffMs: number;
}

export interface FlowNode {
  id: string;
  /** The node's one operation key, e.g. `qa.process`, `templating.handlebars`, `weather.forecast`. */
  operation: string;
  /** The value under the operation key. */
  config: unknown;
  routing: RouteRule[];
  retry?: RetryPolicy;
  timeoutMs?: number;
  when?: string;
  output?: unknown;
  meta?: Record<string, unknown>;
  /** Set for flow-v1 nodes (pack-v1 flows): how the node calls its component. */
  call?: NodeCall;
  /** `.ygtc` `in_map` / `out_map` / `err_map` / node-level `operation` (upstream's reserved keys). */
  inMap?: unknown;
  outMap?: unknown;
  errMap?: unknown;
  /** Node-level `operation` sibling of the operation key (`component.exec` + `operation: op`). */
  operationName?: string;
  loc: SourceLoc;
}

export type FlowType = 'messaging' | 'webhook' | 'timer' | 'websocket' | 'pubsub' | (string & {});

export interface FlowDefinition {
  id: string;
  type: FlowType;
  title?: string;
  description?: string;
  tags?: string[];
  schemaVersion?: string | number;
  /** Entry node: `start` or the first node. */
  start: string;
  parameters: Record<string, unknown>;
  /** In file order. */
  nodes: Map<string, FlowNode>;
  file: string;
  /** The parsed YAML document, as written (for a flow-v1 flow: its JSON form). */
  raw: Record<string, unknown>;
  /** Where the flow came from: a `.ygtc` file (default) or a pack-v1 manifest's flow-v1 IR. */
  dialect?: 'ygtc' | 'flow-v1';
  /** flow-v1 entry names to node ids (`entrypoints`); `start` is the `default` one. */
  entrypoints?: Record<string, string>;
}

export interface FlowIssue {
  severity: 'error' | 'warning';
  code: string;
  message: string;
  file: string;
  line: number;
  column: number;
}

/** `file:line:col: message` — the form editors and CI understand. */
export function formatIssue(i: FlowIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.severity}: ${i.message}`;
}
