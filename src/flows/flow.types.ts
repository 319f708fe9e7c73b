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
  status?: string;
  /** Expression over the flow state; the first rule whose condition holds is taken. */
  condition?: string;
  loc?: SourceLoc;
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
  /** The parsed YAML document, as written. */
  raw: Record<string, unknown>;
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
