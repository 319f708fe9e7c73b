import { describe, expect, it } from 'vitest';
import { GreenticError } from '../../common/errors.js';
import { SessionStoreUnavailableError } from '../../sessions/redis/redis-errors.js';
import { BusUnavailableError, isUnavailableError, retryAfterMs } from './nats-errors.js';

describe('bus error classification', () => {
  it('retries outages in place', () => {
    expect(isUnavailableError(new BusUnavailableError('down'))).toBe(true);
    expect(isUnavailableError(new SessionStoreUnavailableError('down'))).toBe(true);
    expect(isUnavailableError(new GreenticError('egress_failed', 'x', 502, { retryable: true }))).toBe(false);
    expect(isUnavailableError(new Error('down'))).toBe(false);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(new GreenticError('e', 'x', 502, { retryAfter: '3' }), now)).toBe(3000);
    expect(
      retryAfterMs(new GreenticError('e', 'x', 502, { retryAfter: 'Thu, 01 Jan 2026 00:00:05 GMT' }), now),
    ).toBe(5000);
    expect(retryAfterMs(new GreenticError('e', 'x', 502, {}), now)).toBeUndefined();
    // EgressError and RateLimitedError carry the wait in ms already; it wins over a raw header.
    expect(retryAfterMs(new GreenticError('e', 'x', 502, { retryAfterMs: 1500, retryAfter: '9' }), now)).toBe(
      1500,
    );
    expect(retryAfterMs(new GreenticError('e', 'x', 502, { retryAfter: 'soon' }), now)).toBeUndefined();
  });
});
