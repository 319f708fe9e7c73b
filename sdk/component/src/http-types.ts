/** The request and response shapes both HTTP host interfaces share, as the SDK presents them. */
import { InvalidInputError } from './errors.js';

export interface HttpRequest {
  url: string;
  /** Default GET. */
  method?: string;
  headers?: Record<string, string> | Array<[string, string]>;
  /** A string is sent as UTF-8; an object as JSON (with content-type application/json). */
  body?: string | Uint8Array | object;
  /** greentic:host/http only: capped by the host's timeout and the call's deadline. */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
  /** The first value of a header (name case-insensitive). */
  header(name: string): string | undefined;
  text(): string;
  /** The body parsed as JSON; an InvalidInputError naming the URL when it is not JSON. */
  json<T = unknown>(): T;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

export function wireRequest(req: HttpRequest): {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body: Uint8Array | undefined;
} {
  const headers: Array<[string, string]> = Array.isArray(req.headers)
    ? req.headers.map(([k, v]) => [k, v])
    : Object.entries(req.headers ?? {});
  let body: Uint8Array | undefined;
  if (typeof req.body === 'string') body = utf8Encoder.encode(req.body);
  else if (req.body instanceof Uint8Array) body = req.body;
  else if (req.body !== undefined) {
    body = utf8Encoder.encode(JSON.stringify(req.body));
    if (!headers.some(([k]) => k.toLowerCase() === 'content-type'))
      headers.push(['content-type', 'application/json']);
  }
  return { method: (req.method ?? 'GET').toUpperCase(), url: req.url, headers, body };
}

export function wrapResponse(
  url: string,
  status: number,
  headers: Array<[string, string]>,
  body: Uint8Array,
): HttpResponse {
  return {
    status,
    headers,
    body,
    header(name) {
      const n = name.toLowerCase();
      for (const [k, v] of headers) if (k.toLowerCase() === n) return v;
      return undefined;
    },
    text: () => utf8Decoder.decode(body),
    json<T>(): T {
      try {
        return JSON.parse(utf8Decoder.decode(body)) as T;
      } catch (e) {
        throw new InvalidInputError(
          `${url} answered ${status} with a body that is not JSON: ${(e as Error).message}`,
        );
      }
    },
  };
}
