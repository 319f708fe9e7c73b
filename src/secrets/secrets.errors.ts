import { GreenticError } from '../common/errors.js';

/**
 * A backend could not answer (unreachable, refused our credentials, malformed answer). Names the
 * backend and the secret, never a value; `reason` comes from the client and is redacted anyway.
 */
export class SecretBackendError extends GreenticError {
  constructor(
    readonly backend: string,
    readonly secretName: string,
    reason: string,
    details: Record<string, unknown> = {},
  ) {
    super(
      'secret_backend_unavailable',
      `secrets backend '${backend}' could not read secret '${secretName}': ${reason}`,
      503,
      {
        backend,
        name: secretName,
        ...details,
      },
    );
  }
}

/** Short, value-free description of a client or network error for a SecretBackendError. */
export function describeCause(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code ?? (e.cause as { code?: unknown } | undefined)?.code;
    const base = e.name === 'Error' || e.name === 'TypeError' ? e.message : `${e.name}: ${e.message}`;
    return typeof code === 'string' && !base.includes(code) ? `${base} (${code})` : base;
  }
  return String(e);
}
