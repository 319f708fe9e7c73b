/**
 * `greentic:host/http.fetch`: outgoing HTTP for components, only to the hosts the tenant's bundle
 * entry lists, with a timeout (the tenant's, the request's and the call's remaining deadline,
 * whichever is first) and size caps on both bodies. Redirects are returned to the component, not
 * followed, so a listed host cannot bounce a request to an unlisted one.
 */
import type { HostAnswer } from '../pool/protocol.js';

export interface HttpPolicy {
  /**
   * Allowed hosts: `api.example.com` (any port), `api.example.com:8443`, `*.example.com`
   * (subdomains only) or `127.0.0.1:8080`. Empty: no outgoing HTTP at all.
   */
  allow: readonly string[];
  timeoutMs: number;
  maxResponseBytes: number;
  maxRequestBytes: number;
}

export const DEFAULT_HTTP_POLICY: HttpPolicy = {
  allow: [],
  timeoutMs: 10_000,
  maxResponseBytes: 1024 * 1024,
  maxRequestBytes: 1024 * 1024,
};

/** The guest's `request` record, as jco lifts it. */
export interface GuestHttpRequest {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body?: Uint8Array;
  timeoutMs?: number;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Headers the host sets itself (or that would let a guest smuggle a different request). */
const REFUSED_HEADERS = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'te',
  'trailer',
  'keep-alive',
]);

const err = (code: string, message: string): HostAnswer => ({ tag: 'err', val: { code, message } });

function defaultPort(protocol: string): string {
  return protocol === 'https:' ? '443' : '80';
}

/** Whether `url` names a host the policy allows. */
export function hostAllowed(url: URL, allow: readonly string[]): boolean {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = url.port || defaultPort(url.protocol);
  for (const raw of allow) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
    if (!m) continue;
    const pattern = m[1]!.replace(/^\[|\]$/g, '');
    if (m[2] !== undefined && m[2] !== port) continue;
    if (pattern.startsWith('*.')) {
      const suffix = pattern.slice(1);
      if (host.endsWith(suffix) && host.length > suffix.length) return true;
    } else if (host === pattern) {
      return true;
    }
  }
  return false;
}

export interface FetchLimits {
  /** Milliseconds left before the component call's deadline. */
  remainingMs: number;
}

/** Runs one guest request under the tenant's policy. Never throws: failures are `err` answers. */
export async function guestFetch(raw: unknown, policy: HttpPolicy, limits: FetchLimits): Promise<HostAnswer> {
  const req = raw as Partial<GuestHttpRequest> | null;
  if (!req || typeof req.url !== 'string' || typeof req.method !== 'string') {
    return err('invalid', 'request needs a method and a url');
  }
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return err('invalid', `'${req.url}' is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return err('denied', `scheme '${url.protocol}' is not allowed (http and https only)`);
  }
  if (url.username || url.password) return err('invalid', 'credentials in the URL are not allowed');
  if (!hostAllowed(url, policy.allow)) {
    return err('denied', `host '${url.host}' is not on this tenant's HTTP allow-list`);
  }
  const method = req.method.toUpperCase();
  if (!METHODS.has(method)) return err('invalid', `method '${req.method}' is not supported`);
  const headers = new Headers();
  for (const pair of req.headers ?? []) {
    const [name, value] = pair;
    if (typeof name !== 'string' || typeof value !== 'string')
      return err('invalid', 'headers must be string pairs');
    if (REFUSED_HEADERS.has(name.toLowerCase())) return err('invalid', `header '${name}' is set by the host`);
    try {
      headers.append(name, value);
    } catch {
      return err('invalid', `header '${name}' is not valid`);
    }
  }
  const body = req.body;
  if (body !== undefined && body.byteLength > policy.maxRequestBytes) {
    return err('too-large', `request body exceeds ${policy.maxRequestBytes} bytes`);
  }
  if (body !== undefined && (method === 'GET' || method === 'HEAD')) {
    return err('invalid', `${method} requests cannot have a body`);
  }
  const timeoutMs = Math.max(
    1,
    Math.floor(Math.min(policy.timeoutMs, req.timeoutMs ?? Infinity, limits.remainingMs - 5)),
  );
  if (limits.remainingMs <= 5) return err('timeout', 'no time left before the call deadline');
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      redirect: 'manual',
      signal,
    });
  } catch (e) {
    if (signal.aborted) return err('timeout', `no answer from '${url.host}' within ${timeoutMs} ms`);
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return err(
      'failed',
      `request to '${url.host}' failed: ${cause?.code ?? cause?.message ?? (e as Error).message}`,
    );
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > policy.maxResponseBytes) {
    await res.body?.cancel().catch(() => undefined);
    return err('too-large', `response of ${declared} bytes exceeds the cap of ${policy.maxResponseBytes}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > policy.maxResponseBytes) {
          await reader.cancel().catch(() => undefined);
          return err('too-large', `response exceeds the cap of ${policy.maxResponseBytes} bytes`);
        }
        chunks.push(value);
      }
    }
  } catch {
    if (signal.aborted)
      return err('timeout', `response from '${url.host}' not complete within ${timeoutMs} ms`);
    return err('failed', `reading the response from '${url.host}' failed`);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  const resHeaders: Array<[string, string]> = [];
  res.headers.forEach((value, name) => resHeaders.push([name, value]));
  return { tag: 'ok', val: { status: res.status, headers: resHeaders, body: out } };
}
