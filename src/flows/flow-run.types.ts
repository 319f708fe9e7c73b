import type { MessageEnvelope, OutboundReply } from '../core/message-envelope.js';
import type { FlowSnapshot } from '../core/session-store.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import type { MessageCtx } from '../core/message-ctx.js';
import type { PreparedComponent, TenantComponentCalls } from '../core/component-runtime.js';
import type { FlowDefinition, RetryPolicy } from './flow.types.js';

/** The flows and components of one loaded pack version, as the executor sees them. */
export interface PackView {
  id: string;
  version: string;
  flows: ReadonlyMap<string, FlowDefinition>;
  components: ReadonlyMap<string, PreparedComponent>;
  /** The pack's `assets/` files by archive path: cards and i18n strings flow-v1 nodes read. */
  assets?: ReadonlyMap<string, Uint8Array>;
}

/** How deep `flow.call` may nest when the caller does not say. */
export const DEFAULT_CALL_DEPTH_LIMIT = 8;

export interface FlowRunInput {
  tenant: TenantCtx;
  /** The component calls of `tenant` (TenantComponents): the run's only way into a component. */
  components: TenantComponentCalls;
  /** The message's per-message facts (ids, user, session key), built once by the caller. */
  ctx: MessageCtx;
  message: MessageEnvelope;
  pack: PackView;
  flowId: string;
  /** The parked snapshot of this session, if it waits on a node of this flow. */
  snapshot: FlowSnapshot | null;
  /** `session.*` values. The executor may change them; the caller commits. */
  sessionData: Record<string, unknown>;
  /** Secret names the channel binding allows components to read. */
  allowedSecrets: string[];
  /** Node executions allowed for one message, sub-flows included. */
  stepLimit: number;
  componentDeadlineMs: number;
  /** Retry policy of component nodes that declare none (the bundle's channel or tenant `retry`). */
  defaultRetry?: RetryPolicy;
  /** Deepest `flow.call` nesting; the root flow is depth 0. Default DEFAULT_CALL_DEPTH_LIMIT. */
  callDepthLimit?: number;
  /**
   * Record each node's input and output in the trace (conversation tests, debugging). Off on the
   * message path: it copies payloads that may hold user data.
   */
  traceDetail?: boolean;
}

export interface NodeTrace {
  nodeId: string;
  operation: string;
  /** Epoch ms (fractional) when the node started. */
  startedAt: number;
  durationMs: number;
  ok: boolean;
  error?: string;
  /** Set for nodes of a sub-flow: the flow the node belongs to. */
  flowId?: string;
  /** `flow.call` nesting of the node's flow (absent for the root flow). */
  depth?: number;
  /** Component attempts, when a component node was retried. */
  attempts?: number;
  /** Error codes of the attempts that were retried, in order. */
  retries?: string[];
  /** The component a component node called. */
  component?: string;
  /** The node's `when` did not hold: it was passed over. */
  skipped?: boolean;
  /** With `traceDetail`: what the node consumed (mapped args, the answer, the sub-flow input). */
  input?: unknown;
  /** With `traceDetail`: what the node produced (its payload), or what it parked on. */
  output?: unknown;
}

export interface FlowRunResult {
  status: 'completed' | 'parked' | 'failed';
  replies: OutboundReply[];
  /** Set when parked: what to store so the next message resumes. */
  snapshot: FlowSnapshot | null;
  sessionData: Record<string, unknown>;
  /** When completed: the payload of the node the flow ended on. */
  output?: unknown;
  /** `flowId` is set when the failing node belongs to a sub-flow. */
  error?: { code: string; message: string; nodeId?: string; flowId?: string };
  trace: NodeTrace[];
}

/**
 * The flow-run seam the message path calls (FLOW_RUNNER): FlowExecutorService, as FlowsModule
 * provides it (decorated there when the application asks, e.g. with spans and metrics).
 */
export interface FlowRunner {
  run(input: FlowRunInput): Promise<FlowRunResult>;
}

export const FLOW_RUNNER = Symbol('FLOW_RUNNER');
