import type { OwnershipFence } from './partition-ownership.js';
import type { TenantCtx } from './tenant-ctx.js';

/** Where a flow stopped to wait for the user, so the next message resumes it. */
export interface FlowSnapshot {
  packId: string;
  packVersion: string;
  flowId: string;
  /** Node that parked (e.g. a `qa.process` waiting for an answer). */
  nodeId: string;
  /** Flow state: `in.*`, `<node>.payload`, ... (JSON). */
  state: Record<string, unknown>;
  /** Node-private resume data (e.g. which question is pending). */
  pending?: Record<string, unknown>;
}

export interface SessionRecord {
  key: string;
  /** Monotonic; commit is a compare-and-set on it. 0 = not yet stored. */
  version: number;
  snapshot: FlowSnapshot | null;
  /** `session.*` values that outlive one flow run. */
  data: Record<string, unknown>;
  updatedAt: string;
  /**
   * Recently processed message ids (idempotency window), committed atomically with the state they
   * produced. `egress` holds the replies until their publish is confirmed, so a redelivery after a
   * crash re-publishes them (same `Nats-Msg-Id`) instead of running the flow again.
   */
  processed?: readonly ProcessedMessage[];
}

/** One entry of a session's processed-id window (see processed-window.ts). */
export interface ProcessedMessage {
  /** The message id (the provider's, the idempotency key). */
  id: string;
  /** Epoch ms when the message was committed. */
  at: number;
  /** The egress message (JSON) while its publish is unconfirmed; dropped once published. */
  egress?: Record<string, unknown>;
}

export interface SessionStoreHealth {
  up: boolean;
  details: Record<string, unknown>;
}

export interface SessionStore {
  readonly kind: string;
  /**
   * Whether records outlive this process. Only then can a redelivery after a crash find replies
   * committed but not yet published, so only then are they stored until the publish is confirmed.
   */
  readonly durable: boolean;
  /**
   * `fence`: the message runs at its partition's owner; a store may answer from what it cached
   * under the same fence (no other replica can have written since).
   */
  load(tenant: TenantCtx, key: string, fence?: OwnershipFence): Promise<SessionRecord | null>;
  /**
   * Atomic compare-and-set: stores `record` with version `expectedVersion + 1` only if the stored
   * version is still `expectedVersion`. Returns the new version, or throws SessionConflictError.
   */
  commit(
    tenant: TenantCtx,
    record: SessionRecord,
    expectedVersion: number,
    ttlSeconds: number,
    options?: CommitOptions,
  ): Promise<number>;
  delete(tenant: TenantCtx, key: string): Promise<void>;
  /**
   * Runs `fn` with no other message of the same session running anywhere this store reaches. Not
   * needed under partition ownership, where the owner runs a session's messages one at a time.
   */
  runExclusive<T>(tenant: TenantCtx, key: string, fn: () => Promise<T>): Promise<T>;
  /** Remembers a processed message id for the idempotency window; false if it was seen already. */
  markProcessed(tenant: TenantCtx, key: string, messageId: string, windowSeconds: number): Promise<boolean>;
  isProcessed(tenant: TenantCtx, key: string, messageId: string): Promise<boolean>;
  health(): Promise<SessionStoreHealth>;
  close(): Promise<void>;
}

export interface CommitOptions {
  /**
   * The last write of this `runExclusive`: a store that leases sessions may give the lease back in
   * the same step (one round trip less per message). Only a successful commit releases it.
   */
  last?: boolean;
  /**
   * The partition ownership the message runs under: the write is refused with OwnershipLostError
   * if the partition has a newer owner, checked atomically with the compare-and-set.
   */
  fence?: OwnershipFence;
}

export const SESSION_STORE = Symbol('SESSION_STORE');

export function emptySession(key: string): SessionRecord {
  return { key, version: 0, snapshot: null, data: {}, updatedAt: new Date(0).toISOString() };
}
