import type { ChannelBinding } from '../../../tenancy/bundle.types.js';

/** A channel's `settings.allowed_origins`: any origin (`*`, dev envs only) or these origins. */
export type AllowedOrigins = '*' | ReadonlySet<string>;

const NONE: AllowedOrigins = new Set<string>();

/** Parsed once per binding; a reloaded bundle brings new bindings, so entries never go stale. */
const BY_CHANNEL = new WeakMap<ChannelBinding, AllowedOrigins>();

/**
 * An origin as browsers send it (`scheme://host[:port]`, lower-case host, default port dropped),
 * or undefined for what no page of a web site has (`null`, `file:`, garbage).
 */
export function normaliseOrigin(origin: string): string | undefined {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return undefined;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
}

/** The origins a WebChat channel lets call its Direct Line and token endpoint from another site. */
export function allowedOrigins(channel: ChannelBinding): AllowedOrigins {
  let allowed = BY_CHANNEL.get(channel);
  if (allowed) return allowed;
  const raw = channel.settings['allowed_origins'];
  const listed = Array.isArray(raw) ? raw.filter((o): o is string => typeof o === 'string') : [];
  if (listed.includes('*')) allowed = '*';
  else if (listed.length === 0) allowed = NONE;
  else allowed = new Set(listed.map(normaliseOrigin).filter((o): o is string => o !== undefined));
  BY_CHANNEL.set(channel, allowed);
  return allowed;
}

/**
 * The `Access-Control-Allow-Origin` to answer a page of `origin` with, or undefined when the
 * channel does not allow it. The runner's own chat page (same host as the request) is always
 * allowed, whatever the list says; `*` answers `*` (no credentials are ever involved: Direct Line
 * authenticates with a bearer token, not cookies).
 */
export function allowOriginFor(
  origin: string,
  allowed: AllowedOrigins,
  ownHost: string | undefined,
): string | undefined {
  const o = normaliseOrigin(origin);
  if (o === undefined) return allowed === '*' ? '*' : undefined;
  if (ownHost !== undefined && sameHost(new URL(o), ownHost)) return o;
  if (allowed === '*') return '*';
  return allowed.has(o) ? o : undefined;
}

/** `Host: chat.example.com:443` is the host of `https://chat.example.com`: compare as URLs do. */
function sameHost(origin: URL, host: string): boolean {
  try {
    return new URL(`${origin.protocol}//${host}`).host === origin.host;
  } catch {
    return false;
  }
}
