import { plainToInstance, Transform, Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, validateSync } from 'class-validator';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError } from '../common/errors.js';

/**
 * Process-level config from the environment. Everything tenant-specific lives in the bundle.
 * Validated at start-up: a bad value stops the process with a message naming the variable.
 */
export class RunnerConfig {
  @Transform(({ value }) => (value === undefined || value === '' ? 8080 : Number(value)))
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 8080;

  @Transform(({ value }) => (value === undefined || value === '' ? '127.0.0.1' : String(value)))
  @IsString()
  HOST = '127.0.0.1';

  /** Bundle YAML: tenants, channels, packs, limits. */
  @IsString()
  GREENTIC_BUNDLE = 'examples/demo/greentic.demo.yaml';

  @IsIn(['memory', 'nats'])
  GREENTIC_BUS: 'memory' | 'nats' = 'memory';

  @IsIn(['memory', 'redis'])
  GREENTIC_SESSIONS: 'memory' | 'redis' = 'memory';

  @IsString()
  NATS_URL = 'nats://127.0.0.1:4222';

  @IsString()
  REDIS_URL = 'redis://127.0.0.1:6379';

  // JetStream settings (GREENTIC_BUS=nats), applied to the streams at start-up: docs/production-messaging.md.
  /** Streams are `{prefix}_INGRESS`, `{prefix}_EGRESS`, `{prefix}_DLQ`. */
  @Matches(/^[A-Za-z0-9_-]+$/)
  GREENTIC_NATS_STREAM_PREFIX = 'GREENTIC';

  /** Leading subject tokens, so deployments (or test runs) can share one NATS account. */
  @Matches(/^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)?$/)
  GREENTIC_NATS_SUBJECT_PREFIX = '';

  @IsIn(['interest', 'limits', 'workqueue'])
  GREENTIC_NATS_RETENTION: 'interest' | 'limits' | 'workqueue' = 'interest';

  @IsIn(['file', 'memory'])
  GREENTIC_NATS_STORAGE: 'file' | 'memory' = 'file';

  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_NATS_MAX_AGE_S = 86_400;

  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_NATS_DLQ_MAX_AGE_S = 1_209_600;

  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(5)
  GREENTIC_NATS_REPLICAS = 1;

  /** JetStream de-duplication of `Nats-Msg-Id` (provider message ids, reply ids). */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_NATS_DUPLICATE_WINDOW_S = 120;

  /**
   * Partitions of ingress and egress (a stable hash of the session key): each is owned by one
   * replica at a time, so this bounds how many replicas share the work. Changing it re-maps sessions.
   */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1024)
  GREENTIC_NATS_PARTITIONS = 64;

  /** Partition ownership lease: a replica that dies loses its partitions after this long. */
  @Type(() => Number)
  @IsInt()
  @Min(1000)
  GREENTIC_PARTITION_LEASE_MS = 10_000;

  /** Unacknowledged messages per partition consumer. */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_NATS_MAX_ACK_PENDING = 1_024;

  /** Messages one replica runs at once over all the partitions it owns (NATS bus). */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_MAX_INFLIGHT = 512;

  /**
   * This replica's id in partition leases and in its reply subject; unique per live replica.
   * Empty: host name and process id. Not `_`, the egress token of a reply nobody waits for.
   */
  @Matches(/^(?!_$)[A-Za-z0-9_-]*$/)
  GREENTIC_REPLICA_ID = '';

  @Type(() => Number)
  @IsInt()
  @Min(1000)
  GREENTIC_NATS_ACK_WAIT_MS = 30_000;

  /**
   * How often a partition owner acks (NATS bus): one AckAll ack per partition per interval covers
   * every message finished below it, instead of one ack per message. 0 acks at every event-loop
   * turn. A crash replays what finished within the last interval (the session's processed ids
   * skip it; a graceful stop or hand-over acks first); 1 s is well under the ack wait, keeps the
   * finished-but-unacked window far below max_ack_pending at hundreds of messages per second per
   * partition, and already makes acks a small fraction of a message's NATS traffic.
   */
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(10_000)
  GREENTIC_NATS_ACK_INTERVAL_MS = 1_000;

  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_NATS_MAX_DELIVER = 5;

  /** First redelivery delay after a failure; doubles per attempt. */
  @Type(() => Number)
  @IsInt()
  @Min(0)
  GREENTIC_NATS_BACKOFF_MS = 500;

  /** Longest SIGTERM waits for in-flight messages before closing anyway (they are then redelivered). */
  @Type(() => Number)
  @IsInt()
  @Min(0)
  GREENTIC_DRAIN_TIMEOUT_MS = 25_000;

  /** Redis key prefix (GREENTIC_SESSIONS=redis); keys are `{prefix}:{tenant}/{env}/{team}:...`. */
  @Matches(/^[A-Za-z0-9_.:-]+$/)
  GREENTIC_REDIS_PREFIX = 'greentic';

  /** Per-session lease in Redis; renewed while a message runs. */
  @Type(() => Number)
  @IsInt()
  @Min(1000)
  GREENTIC_SESSION_LEASE_MS = 30_000;

  /**
   * Where timer claims and rate-limit buckets live (docs/flows.md): `redis` (REDIS_URL, shared by
   * every replica), `memory` (this process only), `auto` (redis when GREENTIC_SESSIONS=redis).
   */
  @IsIn(['auto', 'memory', 'redis'])
  GREENTIC_COORDINATION: 'auto' | 'memory' | 'redis' = 'auto';

  /** `off`: this replica fires no timers (others still do). */
  @IsIn(['on', 'off'])
  GREENTIC_TIMERS: 'on' | 'off' = 'on';

  /** How long a replica's claim on a timer tick lasts without renewal before another may take it over. */
  @Type(() => Number)
  @IsInt()
  @Min(500)
  GREENTIC_TIMER_LEASE_MS = 10_000;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' = 'info';

  /**
   * `pretty`: one coloured line per event for people (pino-pretty); `json`: one JSON object per line
   * for collectors. Default: pretty when stdout is a terminal, json otherwise (containers, pipes).
   */
  @IsIn(['pretty', 'json'])
  LOG_FORMAT: 'pretty' | 'json' = process.stdout.isTTY ? 'pretty' : 'json';

  /** Where transpiled components and built fixtures are cached. */
  @IsString()
  GREENTIC_CACHE_DIR = '.cache/greentic';

  /**
   * Transpiled components that no runner sharing the cache directory has used for this many days
   * are deleted (at start-up, then daily); 0 keeps everything.
   */
  @Type(() => Number)
  @IsInt()
  @Min(0)
  GREENTIC_CACHE_MAX_AGE_DAYS = 30;

  // Component pool (docs/components.md). Tenants override sizes, deadline and memory in the bundle's `limits`.

  /** `pool`: worker threads with deadlines and memory caps; `inprocess`: the foundation's runtime (no host imports). */
  @IsIn(['pool', 'inprocess'])
  GREENTIC_COMPONENT_RUNTIME: 'pool' | 'inprocess' = 'pool';

  /** Workers kept per tenant once it has called a component. */
  @Type(() => Number)
  @IsInt()
  @Min(0)
  GREENTIC_COMPONENT_POOL_MIN = 1;

  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_COMPONENT_POOL_MAX = 4;

  /** Calls in flight per worker (pipelined); per-tenant concurrency = POOL_MAX × PIPELINE. */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_COMPONENT_PIPELINE = 8;

  /** Calls waiting per tenant once every slot is taken; past it calls fail with component_busy (429). */
  @Type(() => Number)
  @IsInt()
  @Min(0)
  GREENTIC_COMPONENT_QUEUE_SIZE = 256;

  /** Default call deadline for tenants outside the bundle (bundle tenants: `limits.component_deadline_ms`). */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_COMPONENT_DEADLINE_MS = 2_000;

  /** Default linear-memory cap per instance for tenants outside the bundle (`limits.component_memory_mb`). */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_COMPONENT_MEMORY_MB = 128;

  /** Idle time after which workers above the minimum stop. */
  @Type(() => Number)
  @IsInt()
  @Min(100)
  GREENTIC_COMPONENT_IDLE_MS = 60_000;

  /** How long a sync webhook (`?wait=true`) waits for the flow before answering 504. */
  @Transform(({ value }) => (value === undefined || value === '' ? 10_000 : Number(value)))
  @IsInt()
  @Min(1)
  GREENTIC_SYNC_TIMEOUT_MS = 10_000;

  /**
   * The WebChat channel served on the plain Direct Line routes (`/v3/directline/...`), as
   * `tenant/env/team/channel`; empty: only the per-channel `/webchat/{tenant}/{env}/{team}/{channel}/...` routes.
   */
  @Matches(/^$|^[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+$/, {
    message: 'expected tenant/env/team/channel',
  })
  GREENTIC_WEBCHAT_DEFAULT_CHANNEL = '';

  /** Token for admin routes; without it, only loopback callers may use them. */
  @IsOptional()
  @IsString()
  GREENTIC_ADMIN_TOKEN?: string;

  /** Trusted pack signing keys: comma-separated public key files or inline `ed25519:<base64url>` keys. */
  @IsString()
  GREENTIC_TRUSTED_KEYS = '';

  /** How often pack sources are checked for a new version (0: only filesystem events and admin reloads). */
  @Type(() => Number)
  @IsInt()
  @Min(0)
  GREENTIC_PACK_WATCH_INTERVAL_MS = 5_000;

  /** Pack versions held per tenant and pack, so sessions parked on an older one can resume on it. */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  GREENTIC_PACK_KEEP_VERSIONS = 3;

  // Telemetry (docs/operations.md). Read by src/telemetry/otel.ts before Nest starts; listed here
  // so they are validated and shown by `greentic-runner --config-explain`.

  /** Prometheus `/metrics` on the runner's port. */
  @IsIn(['true', 'false'])
  GREENTIC_METRICS: 'true' | 'false' = 'true';

  /** Put the user's message text on the consume span (off: traces carry no message text). */
  @IsIn(['true', 'false'])
  GREENTIC_TRACE_MESSAGE_TEXT: 'true' | 'false' = 'false';

  /** One span per flow node under the flow's span (off: nodes are events on the flow span). */
  @IsIn(['true', 'false'])
  GREENTIC_TRACE_NODES: 'true' | 'false' = 'false';

  /** OTLP/HTTP base URL (`/v1/traces` is appended); traces are exported only when this or the traces URL is set. */
  @Matches(/^$|^https?:\/\/\S+$/, { message: 'expected an http(s) URL' })
  OTEL_EXPORTER_OTLP_ENDPOINT = '';

  /** Full OTLP/HTTP traces URL; wins over OTEL_EXPORTER_OTLP_ENDPOINT. */
  @Matches(/^$|^https?:\/\/\S+$/, { message: 'expected an http(s) URL' })
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = '';

  /** OTLP/HTTP encoding of exported spans (the traces-specific variable wins). */
  @IsIn(['', 'http/protobuf', 'http/json'])
  OTEL_EXPORTER_OTLP_PROTOCOL: '' | 'http/protobuf' | 'http/json' = '';

  @IsIn(['', 'http/protobuf', 'http/json'])
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: '' | 'http/protobuf' | 'http/json' = '';

  @IsString()
  OTEL_SERVICE_NAME = 'greentic-runner';

  @IsIn([
    'always_on',
    'always_off',
    'traceidratio',
    'parentbased_always_on',
    'parentbased_always_off',
    'parentbased_traceidratio',
  ])
  OTEL_TRACES_SAMPLER = 'parentbased_always_on';

  /** Ratio for the `traceidratio` samplers, 0..1. */
  @Matches(/^$|^(0(\.\d+)?|1(\.0+)?)$/, { message: 'expected a ratio between 0 and 1' })
  OTEL_TRACES_SAMPLER_ARG = '';

  /** `true` turns the OpenTelemetry SDK off entirely (no traces, no metrics). */
  @IsIn(['true', 'false'])
  OTEL_SDK_DISABLED: 'true' | 'false' = 'false';
}

const KEYS = Object.keys(new RunnerConfig()) as (keyof RunnerConfig)[];

/** Every variable the runner reads: the config class, plus the optional token it leaves unset. */
export const RUNNER_CONFIG_KEYS: readonly string[] = [...KEYS, 'GREENTIC_ADMIN_TOKEN'];

/** One bad variable: its name, the value as given, and what was expected. */
export interface ConfigProblem {
  key: string;
  value: unknown;
  /** class-validator's message without the key: `must be an integer number`. */
  expected: string;
}

/**
 * What a failed check expected. A value that is not a number at all fails every numeric
 * constraint at once (NaN is neither ≥ 0 nor ≤ 65535); only the integer one says anything then.
 */
function expectation(key: string, raw: unknown, constraints: Record<string, string>): string {
  const notNumeric = constraints['isInt'] !== undefined && !/^\s*-?\d+\s*$/.test(String(raw));
  const messages = notNumeric ? [constraints['isInt']!] : Object.values(constraints);
  // class-validator's messages start with the property name, which the line already gives.
  return messages.map((m) => (m.startsWith(`${key} `) ? m.slice(key.length + 1) : m)).join('; ');
}

/** `@nestjs/config` validate hook: env → typed config, or a ConfigError naming each bad key and value. */
export function validateRunnerConfig(env: Record<string, unknown>): RunnerConfig {
  const picked: Record<string, unknown> = {};
  for (const k of RUNNER_CONFIG_KEYS) if (env[k] !== undefined && env[k] !== '') picked[k] = env[k];
  const cfg = plainToInstance(RunnerConfig, picked, { exposeDefaultValues: true });
  const errors = validateSync(cfg, { skipMissingProperties: false });
  if (errors.length > 0) {
    // The value as given, not as transformed: `PORT=abc` must not read `PORT=null` (NaN).
    const problems: ConfigProblem[] = errors.map((e) => ({
      key: e.property,
      value: picked[e.property] ?? e.value,
      expected: expectation(e.property, picked[e.property], e.constraints ?? {}),
    }));
    const lines = problems.map((p) => `${p.key}=${JSON.stringify(p.value)}: ${p.expected}`);
    throw new ConfigError(`invalid configuration (environment):\n  ${lines.join('\n  ')}`, {
      keys: problems.map((p) => p.key),
    });
  }
  return cfg;
}

/** Read by name outside RunnerConfig: `GREENTIC_SECRET_*` by the env secrets backend, the worker cache by the pool. */
const OTHER_KNOWN = /^GREENTIC_(SECRET_.+|TS_WORKER_CACHE)$/;

/** Edit distance (insertions, deletions, substitutions), for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

export interface UnknownVariable {
  name: string;
  /** The closest variable the runner knows, when one is close enough to be the intended one. */
  suggestion?: string;
}

/**
 * `GREENTIC_*` variables the runner does not read: a typo (`GREENTIC_BUSS=nats`) would otherwise
 * be silently ignored and the default used.
 */
export function unknownGreenticVariables(env: Record<string, unknown>): UnknownVariable[] {
  const known = RUNNER_CONFIG_KEYS.filter((k) => k.startsWith('GREENTIC_'));
  return Object.keys(env)
    .filter((name) => name.startsWith('GREENTIC_') && !known.includes(name) && !OTHER_KNOWN.test(name))
    .sort()
    .map((name) => {
      const best = known
        .map((k) => ({ k, d: distance(name.slice(9), k.slice(9)) }))
        .sort((a, b) => a.d - b.d)[0];
      // A third of the name's own length: BUSS→BUS and SESION→SESSIONS, not TOTALLY_OTHER→TIMERS.
      const close = best && best.d <= Math.max(2, Math.floor((name.length - 9) / 3));
      return close ? { name, suggestion: best.k } : { name };
    });
}

const generatedIds = new WeakMap<object, string>();

/**
 * The replica id: GREENTIC_REPLICA_ID, else host name, process id and a random suffix (two runners
 * in one process, as tests start them, are two replicas), the same for every reader of one config.
 */
export function replicaIdOf(cfg: Pick<RunnerConfig, 'GREENTIC_REPLICA_ID'>): string {
  if (cfg.GREENTIC_REPLICA_ID) return cfg.GREENTIC_REPLICA_ID;
  let id = generatedIds.get(cfg);
  if (id === undefined) {
    id = `${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}-${process.pid}-${randomBytes(3).toString('hex')}`;
    generatedIds.set(cfg, id);
  }
  return id;
}
