import type { MessageEnvelope, OutboundReply } from '../messaging/message-envelope.js';
import type { FlowSnapshot } from '../sessions/session-store.js';
import type { TenantCtx } from '../tenancy/tenant-ctx.js';
import type { PreparedComponent } from '../wasm/component-runtime.js';
import type { FlowDefinition } from './flow.types.js';

/** The flows and components of one loaded pack version, as the executor sees them. */
export interface PackView {
  id: string;
  version: string;
  flows: ReadonlyMap<string, FlowDefinition>;
  components: ReadonlyMap<string, PreparedComponent>;
}

export interface FlowRunInput {
  tenant: TenantCtx;
  message: MessageEnvelope;
  pack: PackView;
  flowId: string;
  /** The parked snapshot of this session, if it waits on a node of this flow. */
  snapshot: FlowSnapshot | null;
  /** `session.*` values. The executor may change them; the caller commits. */
  sessionData: Record<string, unknown>;
  /** Secret names the channel binding allows components to read. */
  allowedSecrets: string[];
  stepLimit: number;
  componentDeadlineMs: number;
}

export interface NodeTrace {
  nodeId: string;
  operation: string;
  durationMs: number;
  ok: boolean;
  error?: string;
}

export interface FlowRunResult {
  status: 'completed' | 'parked' | 'failed';
  replies: OutboundReply[];
  /** Set when parked: what to store so the next message resumes. */
  snapshot: FlowSnapshot | null;
  sessionData: Record<string, unknown>;
  error?: { code: string; message: string; nodeId?: string };
  trace: NodeTrace[];
}
