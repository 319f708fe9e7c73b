import { DEFAULT_JSON_LIMITS, type JsonLimits } from '../common/bounded-json.js';

/**
 * The bundle file (`greentic.demo.yaml` for the demo): tenants > envs > teams > channels,
 * each channel bound to a provider and a pack/flow, plus packs, trust and limits.
 * Snake_case keys are the file's; these types are the validated, normalised form.
 */
export interface BundleLimits extends JsonLimits {
  /** Deadline of one component call. */
  componentDeadlineMs: number;
  /** Memory cap of one component instance. */
  componentMemoryMb: number;
  /** Steps a flow may take for one message before it is stopped (loops that never park). */
  flowStepLimit: number;
  /** Largest webhook body accepted. */
  maxBodyBytes: number;
  // maxJsonDepth, maxJsonKeys (JsonLimits): the shape of a JSON body, checked before it is parsed.
  /** Component pool of the tenant (workers kept, workers at most, queued calls); unset: runner config. */
  componentPoolMin?: number;
  componentPoolMax?: number;
  componentQueueSize?: number;
}

/** Outgoing HTTP of the tenant's components (`greentic:host/http`); no hosts: no HTTP. */
export interface TenantHttpPolicy {
  /** `host`, `host:port` or `*.domain` entries. */
  allow: string[];
  timeoutMs: number;
  maxResponseBytes: number;
}

export interface PackBinding {
  /** Pack id, as its manifest names it. */
  id: string;
  /** Where the pack comes from: `file:` path (relative to the bundle), later `https:`/`oci:`. */
  source: string;
  /** Optional digest pin (`sha256:` / `blake3:`), required by remote resolvers. */
  digest?: string;
  /** Overlay packs, applied in order: their flows replace this pack's flows of the same id. */
  overlays?: PackBinding[];
}

/**
 * What a replica crash may do to a channel's replies (docs/production-messaging.md):
 * `at_least_once` never loses one and may repeat one in flight, with the same idempotency key;
 * `at_most_once` never repeats one and drops one in flight, logging it.
 */
export type DeliveryMode = 'at_least_once' | 'at_most_once';

export interface ChannelBinding {
  id: string;
  provider: string;
  /** Bundle `delivery:`; unset means `at_least_once`. */
  delivery?: DeliveryMode;
  pack: string;
  flow: string;
  sessionTtlSeconds: number;
  /** Provider settings (API base URL, app id...). Never secret values. */
  settings: Record<string, unknown>;
  /** Secret names this channel (and its components) may read. */
  secrets: string[];
  /** Logical secret name → name in the backend, for provider secrets (signing secret, token). */
  secretRefs: Record<string, string>;
  /** Messages this channel accepts (on top of its tenant's limit); unset: no channel limit. */
  rateLimit?: RateLimitPolicy;
  /** Retry of component nodes without their own `retry`; unset: the tenant's. */
  retry?: RetryDefaults;
}

/** A token bucket: `rate` tokens per `perMs`, holding at most `burst`. */
export interface RateLimitPolicy {
  rate: number;
  perMs: number;
  burst: number;
}

export interface RetryDefaults {
  maxAttempts: number;
  backoffMs: number;
}

/** When a timer fires: a cron expression in a time zone, or a fixed interval (aligned to the epoch). */
export type TimerSchedule =
  { kind: 'cron'; expression: string; timezone: string } | { kind: 'interval'; everyMs: number };

/**
 * A flow of a tenant env run on a schedule. The loader also binds it as a channel of provider
 * `timer` (id = timer id) in its team, so ticks resolve like any other message.
 */
export interface TimerBinding {
  id: string;
  tenant: string;
  env: string;
  team: string;
  pack: string;
  flow: string;
  schedule: TimerSchedule;
  /** Run ticks missed while no replica was up (at most `maxCatchUp` of the latest), oldest first. */
  catchUp: boolean;
  maxCatchUp: number;
  /** A tick that could not start within this long of its time is missed (skipped unless catch-up). */
  misfireGraceMs: number;
  /** Handed to the flow as `message.action.input`. */
  input: Record<string, unknown>;
}

export interface TeamBinding {
  id: string;
  channels: Map<string, ChannelBinding>;
}

export interface EnvBinding {
  id: string;
  teams: Map<string, TeamBinding>;
  /** Set by the loader; absent in hand-built bindings (no timers). */
  timers?: Map<string, TimerBinding>;
}

export interface SecretsBinding {
  backend: string;
  /** Backend options (file path, vault address...). */
  options: Record<string, unknown>;
}

export interface TenantBinding {
  id: string;
  envs: Map<string, EnvBinding>;
  packs: PackBinding[];
  secrets: SecretsBinding;
  limits: BundleLimits;
  /** Set by the loader (absent in hand-built bindings: no outgoing HTTP). */
  http?: TenantHttpPolicy;
  /** Messages the tenant accepts across all its channels; unset: no tenant limit. */
  rateLimit?: RateLimitPolicy;
  /** Retry of component nodes without their own `retry`, for channels that set none. */
  retry?: RetryDefaults;
}

export interface TrustConfig {
  policy: 'strict' | 'dev';
  keys: string[];
}

export interface Bundle {
  /** Absolute path of the bundle file; pack sources resolve against its folder. */
  file: string;
  dir: string;
  tenants: Map<string, TenantBinding>;
  trust: TrustConfig;
  limits: BundleLimits;
  /**
   * `provider_modules`: modules with custom messaging providers, imported at start-up, each a
   * path (relative to `dir`) or a package name, optionally `#ExportName`. Read once: a reload
   * does not load new ones.
   */
  providerModules?: string[];
}

export const DEFAULT_LIMITS: BundleLimits = {
  componentDeadlineMs: 2_000,
  componentMemoryMb: 128,
  flowStepLimit: 100,
  maxBodyBytes: 256 * 1024,
  ...DEFAULT_JSON_LIMITS,
};
