import { GreenticError } from '../../common/errors.js';

/** NATS is unreachable or did not acknowledge a publish in time: the caller should retry (HTTP 503). */
export class BusUnavailableError extends GreenticError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('bus_unavailable', message, 503, { retryable: true, ...details });
  }
}

/**
 * How long a platform asked us to wait, in ms, from an error's details: `retryAfterMs` (what
 * EgressError and RateLimitedError carry) or a raw `Retry-After` value (seconds or HTTP date).
 */
export function retryAfterMs(err: unknown, now = Date.now()): number | undefined {
  if (!(err instanceof GreenticError)) return undefined;
  const ms = err.details['retryAfterMs'];
  if (typeof ms === 'number' && Number.isFinite(ms)) return Math.max(0, ms);
  const v = err.details['retryAfter'];
  if (typeof v === 'number' && Number.isFinite(v)) return Math.max(0, v * 1000);
  if (typeof v !== 'string' || v.trim() === '') return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Infrastructure that is down (NATS, Redis, a session held elsewhere): HTTP 503. Such a message is
 * retried in place, holding its delivery, so an outage never uses up its deliveries and dead-letters it.
 */
export function isUnavailableError(err: unknown): boolean {
  return err instanceof GreenticError && err.httpStatus === 503 && err.details['retryable'] !== false;
}
