import { replicaIdOf, type RunnerConfig } from '../../config/runner-config.js';

export type StreamRetention = 'limits' | 'interest' | 'workqueue';

export interface NatsBusOptions {
  /** One or more server URLs, comma separated. */
  servers: string;
  /** Connection name shown by `nats server report connections`. */
  name: string;
  /** Streams are `{streamPrefix}_INGRESS`, `_EGRESS`, `_DLQ`. */
  streamPrefix: string;
  /** Extra leading subject tokens (empty in production): lets deployments or test runs share an account. */
  subjectPrefix: string;
  retention: StreamRetention;
  storage: 'file' | 'memory';
  maxAgeSeconds: number;
  dlqMaxAgeSeconds: number;
  replicas: number;
  duplicateWindowSeconds: number;
  partitions: number;
  /** This replica's id in partition leases and its reply subject. */
  replica: string;
  /** Partition ownership lease; a dead replica's partitions move after it. */
  partitionLeaseMs: number;
  /** Unacked messages per partition consumer. */
  maxAckPending: number;
  /** Messages asked for per pull (at most maxAckPending); refilled when a quarter is left. */
  pullBatch: number;
  /** Messages this replica runs at once, over all partitions it owns. */
  maxInflight: number;
  ackWaitMs: number;
  /** Partition owners ack (AckAll, one ack per partition) this often; 0: at every event-loop turn. */
  ackIntervalMs: number;
  maxDeliver: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  publishTimeoutMs: number;
  drainTimeoutMs: number;
  /** Period of the background read of stream and consumer state that `/health` answers from. */
  healthRefreshMs: number;
}

export const DEFAULT_NATS_BUS_OPTIONS: NatsBusOptions = {
  servers: 'nats://127.0.0.1:4222',
  name: 'greentic-runner',
  streamPrefix: 'GREENTIC',
  subjectPrefix: '',
  retention: 'interest',
  storage: 'file',
  maxAgeSeconds: 24 * 3600,
  dlqMaxAgeSeconds: 14 * 24 * 3600,
  replicas: 1,
  duplicateWindowSeconds: 120,
  partitions: 64,
  replica: `r${process.pid}`,
  partitionLeaseMs: 10_000,
  maxAckPending: 1_024,
  pullBatch: 512,
  maxInflight: 512,
  ackWaitMs: 30_000,
  ackIntervalMs: 1_000,
  maxDeliver: 5,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  publishTimeoutMs: 5_000,
  drainTimeoutMs: 25_000,
  healthRefreshMs: 5_000,
};

export function natsBusOptionsFrom(cfg: RunnerConfig): NatsBusOptions {
  return {
    servers: cfg.NATS_URL,
    name: `greentic-runner-${process.pid}`,
    streamPrefix: cfg.GREENTIC_NATS_STREAM_PREFIX,
    subjectPrefix: cfg.GREENTIC_NATS_SUBJECT_PREFIX,
    retention: cfg.GREENTIC_NATS_RETENTION,
    storage: cfg.GREENTIC_NATS_STORAGE,
    maxAgeSeconds: cfg.GREENTIC_NATS_MAX_AGE_S,
    dlqMaxAgeSeconds: cfg.GREENTIC_NATS_DLQ_MAX_AGE_S,
    replicas: cfg.GREENTIC_NATS_REPLICAS,
    duplicateWindowSeconds: cfg.GREENTIC_NATS_DUPLICATE_WINDOW_S,
    partitions: cfg.GREENTIC_NATS_PARTITIONS,
    replica: replicaIdOf(cfg),
    partitionLeaseMs: cfg.GREENTIC_PARTITION_LEASE_MS,
    maxAckPending: cfg.GREENTIC_NATS_MAX_ACK_PENDING,
    pullBatch: DEFAULT_NATS_BUS_OPTIONS.pullBatch,
    maxInflight: cfg.GREENTIC_MAX_INFLIGHT,
    ackWaitMs: cfg.GREENTIC_NATS_ACK_WAIT_MS,
    ackIntervalMs: cfg.GREENTIC_NATS_ACK_INTERVAL_MS,
    maxDeliver: cfg.GREENTIC_NATS_MAX_DELIVER,
    backoffBaseMs: cfg.GREENTIC_NATS_BACKOFF_MS,
    backoffMaxMs: DEFAULT_NATS_BUS_OPTIONS.backoffMaxMs,
    publishTimeoutMs: DEFAULT_NATS_BUS_OPTIONS.publishTimeoutMs,
    drainTimeoutMs: cfg.GREENTIC_DRAIN_TIMEOUT_MS,
    healthRefreshMs: DEFAULT_NATS_BUS_OPTIONS.healthRefreshMs,
  };
}
