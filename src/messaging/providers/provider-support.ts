import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { DEFAULT_JSON_LIMITS, parseBoundedJson, type JsonLimits } from '../../common/bounded-json.js';
import { BadRequestError, ConfigError, GreenticError } from '../../common/errors.js';
import type { SecretsService } from '../../secrets/secrets.service.js';
import type { ResolvedChannel } from '../../tenancy/bundle-registry.service.js';
import type { OutboundReply } from '../../core/message-envelope.js';
import { adaptiveCardFallback, adaptiveCardText, isAdaptiveCard } from './adaptive-card-text.js';
import { EgressError, type ProviderRequest } from './messaging-provider.js';

/** Helpers every provider needs: headers, HMAC, constant-time compare, secrets, settings, cards, egress errors. */

export function header(req: Pick<ProviderRequest, 'headers'>, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function hmacSha256(secret: string | Buffer, ...parts: (string | Buffer)[]): Buffer {
  const h = createHmac('sha256', secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * Constant-time equality of two strings or buffers of any length: both sides are hashed first,
 * so neither the content nor the length of the expected value leaks through timing.
 */
export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

/**
 * Whether `provided` is `prefix` + the lower-case hex of `digest`, in constant time. The format
 * (and so the length) of a signature is public; only its value is compared, byte for byte.
 */
export function hexSignatureMatches(digest: Buffer, provided: string, prefix: string): boolean {
  if (provided.length !== prefix.length + digest.length * 2 || !provided.startsWith(prefix)) return false;
  const hex = provided.slice(prefix.length);
  if (!/^[0-9a-fA-F]+$/.test(hex)) return false;
  return timingSafeEqual(digest, Buffer.from(hex, 'hex'));
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}

/**
 * A JSON object from a provider's body, refused (400) when malformed, not an object, or nested
 * deeper or wider than `limits`: pass the channel's `tenantBinding.limits`, so the bundle's
 * `max_json_depth` / `max_json_keys` apply.
 */
export function parseJsonObject(
  raw: Buffer | string,
  what: string,
  limits: JsonLimits = DEFAULT_JSON_LIMITS,
): Record<string, unknown> {
  let v: unknown;
  try {
    v = parseBoundedJson(typeof raw === 'string' ? raw : raw.toString('utf8'), limits);
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    throw new BadRequestError(`${what}: malformed JSON body (${e.message})`);
  }
  if (!isRecord(v)) throw new BadRequestError(`${what}: body must be a JSON object`);
  return v;
}

/**
 * A provider secret of the channel: `secret_refs[logical]` names it in the tenant's backend
 * (default: the logical name itself). A missing secret is a configuration error (500), never a
 * reason to accept an unverified request.
 */
export async function channelSecret(
  secrets: SecretsService,
  resolved: ResolvedChannel,
  logical: string,
): Promise<string> {
  const name = resolved.channel.secretRefs[logical] ?? logical;
  const v = await secrets.get(resolved.tenant, name);
  if (v === undefined || v === '') {
    throw new ConfigError(
      `channel '${resolved.channel.id}' of tenant '${resolved.tenant.tenantId}': secret '${name}' (${logical}) is not set`,
      { tenant: resolved.tenant.tenantId, channel: resolved.channel.id, secret: name },
    );
  }
  return v;
}

export function setting(resolved: ResolvedChannel, key: string): string | undefined {
  const v = resolved.channel.settings[key];
  return typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' ? String(v) : undefined;
}

export function requireSetting(resolved: ResolvedChannel, key: string): string {
  const v = setting(resolved, key);
  if (v === undefined) {
    throw new ConfigError(
      `channel '${resolved.channel.id}' of tenant '${resolved.tenant.tenantId}': setting '${key}' is required`,
      {
        tenant: resolved.tenant.tenantId,
        channel: resolved.channel.id,
        setting: key,
      },
    );
  }
  return v;
}

/** A base URL from settings (so tests and private deployments can point elsewhere), without a trailing slash. */
export function baseUrl(resolved: ResolvedChannel, key: string, fallback: string): string {
  return (setting(resolved, key) ?? fallback).replace(/\/+$/, '');
}

/** `Retry-After`: delta seconds or an HTTP date. */
export function parseRetryAfter(v: string | null | undefined): number | undefined {
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** 429 and 5xx may be retried (after Retry-After); other statuses will fail the same way again. */
export function httpEgressError(provider: string, what: string, res: Response, detail?: string): EgressError {
  const retryable = res.status === 429 || res.status >= 500;
  return new EgressError(
    provider,
    `${what} answered ${res.status}${detail ? `: ${detail}` : ''}`,
    retryable,
    parseRetryAfter(res.headers.get('retry-after')),
    res.status,
  );
}

/** Network failures (refused, reset, timeout) are retryable. */
export function networkEgressError(provider: string, what: string, e: unknown): GreenticError {
  if (e instanceof GreenticError) return e;
  return new EgressError(provider, `${what} failed: ${(e as Error).message}`, true);
}

/** The provider-neutral reading of a flow's `card`: what every channel can render. */
export interface NormalCard {
  title?: string;
  subtitle?: string;
  text?: string;
  imageUrl?: string;
  /**
   * `data`: an Adaptive Card Submit's data, which the provider encodes into the button so a tap
   * comes back as that action (`value` is then the button's title, the fallback when it cannot).
   */
  buttons: { title: string; value: string; url?: string; data?: Record<string, unknown> }[];
}

/**
 * Reads a flow card written as `{ title, subtitle, text, image, buttons: [ "A" | { title, value, url } ] }`
 * (synonyms `body`, `image_url`, `actions`, `label`, `data` accepted). Channel-native cards
 * (Block Kit `blocks`, `type: AdaptiveCard`) are passed through by the providers that speak them.
 */
export function normalizeCard(card: Record<string, unknown>): NormalCard {
  if (isAdaptiveCard(card)) return normalizeAdaptiveCard(card);
  const out: NormalCard = { buttons: [] };
  const title = str(card['title']);
  const subtitle = str(card['subtitle']);
  const text = str(card['text']) ?? str(card['body']);
  const image = str(card['image']) ?? str(card['image_url']) ?? str(card['imageUrl']);
  if (title) out.title = title;
  if (subtitle) out.subtitle = subtitle;
  if (text) out.text = text;
  if (image) out.imageUrl = image;
  const buttons = Array.isArray(card['buttons'])
    ? card['buttons']
    : Array.isArray(card['actions'])
      ? card['actions']
      : [];
  for (const b of buttons) {
    if (typeof b === 'string') out.buttons.push({ title: b, value: b });
    else if (isRecord(b)) {
      const t = str(b['title']) ?? str(b['label']) ?? str(b['text']);
      if (!t) continue;
      const url = str(b['url']);
      out.buttons.push({ title: t, value: str(b['value']) ?? str(b['data']) ?? t, ...(url ? { url } : {}) });
    }
  }
  return out;
}

/**
 * An Adaptive Card read as text (see adaptive-card-text.ts): body lines as `text` (images as their
 * alt text or URL among them, in place), Submit buttons with their data, OpenUrl buttons as links.
 */
function normalizeAdaptiveCard(card: Record<string, unknown>): NormalCard {
  const fb = adaptiveCardFallback(card);
  const out: NormalCard = { buttons: [] };
  if (fb.title) out.title = fb.title;
  const text = fb.lines.join('\n');
  if (text) out.text = text;
  for (const b of fb.buttons) {
    if (b.url) out.buttons.push({ title: b.title, value: b.url, url: b.url });
    else if (b.data) out.buttons.push({ title: b.title, value: b.title, data: b.data });
    else out.buttons.push({ title: b.title, value: b.text ?? b.title });
  }
  return out;
}

/** Plain-text rendering of a reply, for channels (or parts) without rich formats. */
export function replyText(reply: OutboundReply): string {
  if (reply.text) return reply.text;
  if (isAdaptiveCard(reply.card)) return adaptiveCardText(reply.card);
  if (reply.card) {
    const c = normalizeCard(reply.card);
    return [c.title, c.subtitle, c.text].filter(Boolean).join('\n');
  }
  return '';
}
