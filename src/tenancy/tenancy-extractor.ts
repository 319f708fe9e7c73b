import type { TenancyCoordinates } from './bundle-registry.service.js';
import { parseSubject } from '../core/subjects.js';

/** Header names of the header strategy (admin and API calls that have no tenancy in the path). */
export const TENANT_HEADER = 'x-greentic-tenant';
export const ENV_HEADER = 'x-greentic-env';
export const TEAM_HEADER = 'x-greentic-team';

interface HttpLike {
  params?: Record<string, string | undefined>;
  headers?: Record<string, string | string[] | undefined>;
}

interface RpcLike {
  getPattern?: () => unknown;
  getData?: () => unknown;
  getContext?: () => unknown;
  pattern?: unknown;
  data?: unknown;
  context?: { getSubject?: () => string };
}

function header(h: HttpLike['headers'], name: string): string | undefined {
  const v = h?.[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Reads tenancy coordinates from whatever carries a request: route params
 * (`/…/{tenant}/{env}/{team}/{channel}`), tenancy headers, or a NATS subject
 * (`greentic.messaging.ingress.{env}.{tenant}.{team}.{channel}`). Existence is checked elsewhere.
 */
export function extractTenancy(request: unknown): TenancyCoordinates | undefined {
  if (!request || typeof request !== 'object') return undefined;
  const http = request as HttpLike;
  const p = http.params;
  if (p?.tenant && p.env) return { tenant: p.tenant, env: p.env, team: p.team, channel: p.channel };
  const ht = header(http.headers, TENANT_HEADER);
  const he = header(http.headers, ENV_HEADER);
  if (ht && he) return { tenant: ht, env: he, team: header(http.headers, TEAM_HEADER) };
  const rpc = request as RpcLike;
  const subject = rpc.context?.getSubject?.() ?? (typeof rpc.pattern === 'string' ? rpc.pattern : undefined);
  if (subject) {
    const s = parseSubject(subject);
    if (s) return { tenant: s.tenant, env: s.env, team: s.team, channel: s.channel };
  }
  return undefined;
}
