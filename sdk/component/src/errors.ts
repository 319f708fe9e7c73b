/**
 * Errors a component throws. `NodeError` becomes the world's `node-error` (the flow sees its
 * code, and retries when `retryable`); `HostError` is a host import that refused or failed.
 * Anything else a handler throws becomes `component_failed` with the error's message.
 */

export interface NodeErrorOptions {
  retryable?: boolean;
  /** How long the runner should wait before a retry. */
  backoffMs?: number;
  /** Extra detail for the flow (CBOR-encoded on the wire). */
  details?: unknown;
}

export class NodeError extends Error {
  override name = 'NodeError';
  readonly retryable: boolean;
  readonly backoffMs: number | undefined;
  readonly details: unknown;

  constructor(
    readonly code: string,
    message: string,
    options: NodeErrorOptions = {},
  ) {
    super(message);
    this.retryable = options.retryable ?? false;
    this.backoffMs = options.backoffMs;
    this.details = options.details;
  }
}

/** The call's input is not what the operation accepts (`invalid_input`, not retried). */
export class InvalidInputError extends NodeError {
  override name = 'InvalidInputError';
  constructor(message: string, details?: unknown) {
    super('invalid_input', message, details === undefined ? {} : { details });
  }
}

/** The operation name is not one the component describes (`unknown_operation`). */
export class UnknownOperationError extends NodeError {
  override name = 'UnknownOperationError';
  constructor(op: string, known: readonly string[]) {
    super('unknown_operation', `no operation '${op}' (this component has: ${known.join(', ') || 'none'})`);
  }
}

/** Codes the runner's host interfaces answer with; `denied` and `not-found` are not worth retrying. */
const RETRYABLE_HOST_CODES = new Set(['timeout', 'unavailable', 'failed', 'internal']);

/** A host import (`state`, `secrets`, `http`, ...) refused or failed the request. */
export class HostError extends NodeError {
  override name = 'HostError';
  constructor(
    /** Which host interface answered, e.g. `greentic:host/http`. */
    readonly iface: string,
    /** The host's own code: `denied`, `invalid`, `not-found`, `timeout`, `too-large`, `unavailable`, ... */
    readonly hostCode: string,
    message: string,
  ) {
    super(`host_${hostCode.replace(/-/g, '_')}`, `${iface}: ${message}`, {
      retryable: RETRYABLE_HOST_CODES.has(hostCode),
    });
  }
}

/**
 * Calls a host import and turns its `err(...)` (thrown by the generated bindings as an error
 * whose `payload` is the WIT error value) into a HostError.
 */
export function hostCall<T>(iface: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw toHostError(iface, e);
  }
}

export function toHostError(iface: string, e: unknown): HostError | unknown {
  const payload = (e as { payload?: unknown } | null)?.payload;
  if (typeof payload === 'string') return new HostError(iface, payload, payload);
  if (payload && typeof payload === 'object' && typeof (payload as { code?: unknown }).code === 'string') {
    const p = payload as { code: string; message?: unknown };
    return new HostError(iface, p.code, typeof p.message === 'string' ? p.message : p.code);
  }
  return e;
}
