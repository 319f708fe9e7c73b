import { GreenticError } from '../common/errors.js';

/**
 * Over a tenant's or channel's message rate: 429 with `Retry-After` on webhooks; on the bus the
 * message is redelivered after `retryAfterMs` (it is not the message's fault, so never dead-lettered
 * for it directly).
 */
export class RateLimitedError extends GreenticError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
    details: Record<string, unknown> = {},
  ) {
    super('rate_limited', message, 429, {
      ...details,
      retryable: true,
      retryAfterMs,
      // Whole seconds, for the HTTP Retry-After header (the buses read retryAfterMs).
      retryAfter: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    });
  }
}

/** The coordination store (Redis) cannot be reached: limits fail open, timers wait. */
export class CoordinationUnavailableError extends GreenticError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('coordination_unavailable', message, 503, { retryable: true, ...details });
  }
}
