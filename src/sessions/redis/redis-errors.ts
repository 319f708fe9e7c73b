import { GreenticError } from '../../common/errors.js';

/**
 * Redis is unreachable or too slow. 503 with `retryable`: the bus retries the message in place
 * (its delivery count does not grow), so an outage delays messages and never dead-letters them.
 */
export class SessionStoreUnavailableError extends GreenticError {
  constructor(message: string) {
    super('session_store_unavailable', message, 503, { retryable: true });
  }
}

/** Another replica held the session's lease for longer than we wait; the message is retried later. */
export class SessionBusyError extends GreenticError {
  constructor(key: string, waitedMs: number) {
    super('session_busy', `session '${key}' is being processed elsewhere (waited ${waitedMs} ms)`, 503, {
      retryable: true,
    });
  }
}

/**
 * The lease expired and someone else may have taken it: our commit was refused by its fencing
 * token, so nothing this run did is stored. Retried like any transient failure.
 */
export class SessionLeaseLostError extends GreenticError {
  constructor(key: string) {
    super(
      'session_lease_lost',
      `lost the lease on session '${key}' before committing; nothing was stored`,
      503,
      { retryable: true },
    );
  }
}

const CONNECTION_TROUBLE =
  /Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Stream isn't writeable|enableOfflineQueue|max retries|Reached the max retries|LOADING|READONLY|MASTERDOWN/i;

/** Connection trouble becomes SessionStoreUnavailableError; anything else (a script bug, WRONGTYPE) stays as it is. */
export function asStoreError(e: unknown): unknown {
  if (e instanceof GreenticError) return e;
  const err = e as Error;
  if (err?.name === 'MaxRetriesPerRequestError' || CONNECTION_TROUBLE.test(err?.message ?? '')) {
    return new SessionStoreUnavailableError(`Redis unavailable: ${err.message}`);
  }
  return e;
}
