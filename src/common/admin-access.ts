import { createHash, timingSafeEqual } from 'node:crypto';

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** What the admin policy needs of a request: the socket's address and the headers. */
export interface AdminCaller {
  socket?: { remoteAddress?: string | undefined } | null;
  headers: Record<string, string | string[] | undefined>;
}

export type AdminAccess =
  | { granted: true }
  | { granted: false; status: 401 | 403; remote: string; presented: boolean; reason: string };

/**
 * The one admin policy, for the admin routes (AdminGuard) and for the details of `/health`: with
 * GREENTIC_ADMIN_TOKEN set, `x-admin-token` must equal it; without one, only loopback callers get in.
 * The socket address is used, never X-Forwarded-For, which any caller can write.
 */
export function adminAccess(req: AdminCaller, token: string | undefined): AdminAccess {
  const remote = req.socket?.remoteAddress ?? 'unknown';
  if (token) {
    const given = req.headers['x-admin-token'];
    // Compare fixed-length digests so the comparison time says nothing about the token.
    if (typeof given === 'string' && timingSafeEqual(digest(given), digest(token))) return { granted: true };
    return {
      granted: false,
      status: 401,
      remote,
      presented: typeof given === 'string',
      reason: 'admin routes need a valid x-admin-token header',
    };
  }
  if (LOOPBACK.has(remote)) return { granted: true };
  return {
    granted: false,
    status: 403,
    remote,
    presented: false,
    reason: 'admin routes are open to loopback callers only (set GREENTIC_ADMIN_TOKEN for remote access)',
  };
}
