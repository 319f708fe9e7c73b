import { describe, expect, it } from 'vitest';
import {
  BadRequestError,
  GreenticError,
  isPermanentError,
  SessionConflictError,
  TenancyMismatchError,
} from './errors.js';

describe('isPermanentError: what a bus dead-letters at once', () => {
  it('dead-letters client errors at once, retries conflicts, rate limits and server errors', () => {
    expect(isPermanentError(new BadRequestError('x'))).toBe(true);
    expect(isPermanentError(new TenancyMismatchError('x'))).toBe(true);
    expect(isPermanentError(new SessionConflictError('k'))).toBe(false);
    expect(isPermanentError(new GreenticError('rate', 'x', 429))).toBe(false);
    expect(isPermanentError(new GreenticError('egress_failed', 'x', 502, { retryable: false }))).toBe(true);
    expect(isPermanentError(new GreenticError('egress_failed', 'x', 502, { retryable: true }))).toBe(false);
    expect(isPermanentError(new Error('boom'))).toBe(false);
  });
});
