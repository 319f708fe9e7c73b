import type { TenantCtx } from './tenant-ctx.js';

export const WORLD_V01 = 'greentic:component@0.1.0';
export const WORLD_V06 = 'greentic:component@0.6.0';
export type ComponentWorld = typeof WORLD_V01 | typeof WORLD_V06;

/** A component as a pack carries it. */
export interface ComponentSpec {
  name: string;
  version: string;
  /** Raw component bytes (`component.wasm`). */
  bytes: Uint8Array;
  /** The component manifest's `default_operation`: called when a call names no operation. */
  defaultOperation?: string;
  /**
   * Host directory of the pack's `assets/`, visible to the component read-only at `/` through
   * WASI (upstream components read `assets/cards/x.json` this way). None: no filesystem at all.
   */
  assetsDir?: string;
}

/** One operation a component declares (0.6 `describe()`); 0.1 components have only `execute`. */
export interface ComponentOperation {
  name: string;
  /** Upstream `node.describe()`: the operation's one-line summary. */
  summary?: string;
  inputSchema?: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
}

/** A component after load: transpiled, compiled, its world detected. Shared by all tenants. */
export interface PreparedComponent {
  name: string;
  version: string;
  /** SHA-256 hex of the component bytes: the cache and instance key. */
  digest: string;
  world: ComponentWorld;
  /** Export names as the component declares them. */
  exports: string[];
  operations: ComponentOperation[];
  /** From the spec: the operation a call without one runs. */
  defaultOperation?: string;
  /** From the spec: the pack's assets directory the component sees read-only. */
  assetsDir?: string;
}

/** Per-call facts handed to the component (0.6 envelope ctx; 0.1 message fields). */
export interface ComponentCallContext {
  flowId: string;
  nodeId: string;
  messageId: string;
  userId: string;
  sessionKey: string;
  /** Message text, used as the 0.1 `message.content` when no args are mapped. */
  text: string;
  traceId?: string;
  attempt?: number;
  /** The message's locale (`en`, `de-CH`): the 0.6 envelope's `i18n-id` (default `en`). */
  locale?: string;
  /** Secret names the channel binding allows this call to read. */
  allowedSecrets?: string[];
  /**
   * The session data the caller commits after the call (the flow run's `session.*`): the
   * `greentic:host/state` import reads and writes it. Stays on the main thread.
   */
  session?: Record<string, unknown>;
}

export interface ComponentCall {
  component: PreparedComponent;
  /**
   * The operation the flow names. Absent or empty: the component's `defaultOperation`, else its
   * only declared operation (`execute` for 0.1); otherwise the call fails (`operation_required`).
   */
  operation?: string;
  /** Mapped args (JSON). */
  input: unknown;
  ctx: ComponentCallContext;
  /** Overrides the tenant's default deadline. */
  deadlineMs?: number;
}

/** A call whose operation is settled (see `callOperation` in component-calls.ts). */
export type ResolvedComponentCall = ComponentCall & { operation: string };

/**
 * The component seam. `prepare` does the per-digest work once (transpile, compile, detect world);
 * `invoke` runs one call in the tenant's own instance, never shared with another tenant.
 * Errors are the Component*Error classes of common/errors.ts.
 */
export interface ComponentRuntime {
  readonly kind: string;
  prepare(spec: ComponentSpec): Promise<PreparedComponent>;
  invoke(tenant: TenantCtx, call: ComponentCall): Promise<unknown>;
  /** Drops the tenant's instances (pack reload, tenant removal). */
  release?(tenant: TenantCtx): Promise<void>;
  stats?(): Record<string, unknown>;
  close(): Promise<void>;
}

export const COMPONENT_RUNTIME = Symbol('COMPONENT_RUNTIME');

/**
 * Component calls bound to one tenant (TenantComponents in src/wasm): what a flow run is given,
 * so it cannot call into another tenant's instances.
 */
export interface TenantComponentCalls {
  readonly tenant: TenantCtx;
  invoke(call: ComponentCall): Promise<unknown>;
}
