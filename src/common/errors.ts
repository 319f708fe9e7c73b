/**
 * Domain errors. Each carries a stable `code` and the HTTP status it maps to, so the one
 * exception filter (and the NATS error replies) can answer without knowing every class.
 */
export class GreenticError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly httpStatus: number = 500,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Redelivery cannot fix it (bad input, refused tenancy, 4xx from a platform): dead-letter at once.
 * The one rule for a failed delivery, which both buses apply: handlers, the egress dispatcher and
 * the exception filter rethrow, and only the bus dead-letters. Undecided by `retryable`, a 4xx
 * is permanent except those that ask to come back later (timeout, conflict, locked, too early,
 * too many requests).
 */
export function isPermanentError(err: unknown): boolean {
  if (!(err instanceof GreenticError)) return false;
  if (err.details['retryable'] === false) return true;
  if (err.details['retryable'] === true) return false;
  return err.httpStatus >= 400 && err.httpStatus < 500 && ![408, 409, 423, 425, 429].includes(err.httpStatus);
}

/** A route that exists but does not serve this method; the answer carries `Allow: {allow}`. */
export class MethodNotAllowedError extends GreenticError {
  constructor(
    message: string,
    readonly allow: readonly string[],
  ) {
    super('method_not_allowed', message, 405, { allow });
  }
}

export type TenancyPart = 'tenant' | 'env' | 'team' | 'channel' | 'provider';

export class UnknownTenancyError extends GreenticError {
  constructor(
    readonly part: TenancyPart,
    readonly value: string,
  ) {
    super('unknown_' + part, `unknown ${part} '${value}'`, 404, { part, value });
  }
}

export class TenancyMismatchError extends GreenticError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('tenancy_mismatch', message, 403, details);
  }
}

export class BadRequestError extends GreenticError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('bad_request', message, 400, details);
  }
}

export class PayloadTooLargeError extends GreenticError {
  constructor(limitBytes: number) {
    super('payload_too_large', `request body exceeds ${limitBytes} bytes`, 413, { limitBytes });
  }
}

/**
 * A JSON body nested deeper, or holding more object keys, than the bundle's `limits` allow; refused
 * before it is parsed, so nothing downstream (serialising, storing, logging) walks it.
 */
export class PayloadTooDeepError extends GreenticError {
  constructor(maxDepth: number) {
    super('payload_too_deep', `JSON body nests deeper than ${maxDepth} levels`, 400, { maxDepth });
  }
}

export class PayloadTooManyKeysError extends GreenticError {
  constructor(maxKeys: number) {
    super('payload_too_many_keys', `JSON body holds more than ${maxKeys} object keys`, 400, { maxKeys });
  }
}

export class ConfigError extends GreenticError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('config_invalid', message, 500, details);
  }
}

/** A flow definition that fails loading or validation; `file:line:col` in the message. */
export class FlowValidationError extends GreenticError {
  constructor(
    message: string,
    readonly issues: ReadonlyArray<{ file: string; line: number; column: number; message: string }> = [],
  ) {
    super('flow_invalid', message, 422, { issues });
  }
}

export class FlowExecutionError extends GreenticError {
  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(code, message, 500, details);
  }
}

export class PackError extends GreenticError {
  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(code, message, 422, details);
  }
}

export class ComponentError extends GreenticError {
  constructor(code: string, message: string, httpStatus = 502, details: Record<string, unknown> = {}) {
    super(code, message, httpStatus, details);
  }
}

export class ComponentLoadError extends ComponentError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('component_load_failed', message, 422, details);
  }
}

export class ComponentTrapError extends ComponentError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('component_trap', message, 502, details);
  }
}

export class ComponentTimeoutError extends ComponentError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('component_timeout', message, 504, details);
  }
}

export class ComponentMemoryExceededError extends ComponentError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('component_memory_exceeded', message, 502, details);
  }
}

export class ComponentBusyError extends ComponentError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('component_busy', message, 429, details);
  }
}

export class SecretAccessError extends GreenticError {
  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(code, message, 403, details);
  }
}

export class SessionConflictError extends GreenticError {
  constructor(key: string) {
    super('session_conflict', `session '${key}' was changed concurrently`, 409, {});
  }
}

/**
 * A write refused because the partition it was made under has a newer owner (its lease lapsed
 * while this replica stalled, or it was handed over): the new owner replays the message.
 */
export class OwnershipLostError extends GreenticError {
  constructor(partition: number, epoch: number) {
    super(
      'partition_owner_changed',
      `partition ${partition} has an owner newer than epoch ${epoch}; this replica's write was refused`,
      409,
      { partition, epoch },
    );
  }
}

/**
 * A message delivered past its delivery limit whose work was not done before: it is not run again
 * but dead-lettered (its earlier attempts failed, or died with their replicas).
 */
export class DeliveryLimitError extends GreenticError {
  constructor(messageId: string) {
    super(
      'max_deliveries',
      `message '${messageId}' was delivered past its delivery limit without being processed before; it is not run again`,
      500,
      { retryable: false, messageId },
    );
  }
}

/**
 * What went wrong, as text, whatever was thrown: an Error's message, a string, else its JSON (a
 * handler may reject with `undefined` or a plain object; reading `.message` of those would throw).
 */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}
