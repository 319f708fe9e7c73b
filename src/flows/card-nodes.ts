import type { OutboundReply } from '../core/message-envelope.js';
import { resolveI18nTokens, type I18nLookup } from './mapping-template.js';
import { i18nBundles, pickLocale, readJsonAsset, type PackAssets } from './pack-i18n.js';

/**
 * What the runner does around upstream's card component (`ai.greentic.component-adaptive-card`)
 * and around what flow-v1 nodes output, after upstream's runner (engine.rs) and messaging
 * (`parse_envelopes`): a card node's config is turned into a full invocation (the card read from
 * the pack's assets, its i18n strings, the message's locale), an output holding `renderedCard` is a
 * card reply, and `emit.response` payloads (`messages[]`, `text`, strings) are replies.
 */

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A node input meant for the card component: it names a card source, or its config does. */
export function isCardInvocation(payload: unknown): payload is Record<string, unknown> {
  if (!isRecord(payload)) return false;
  if (payload['card_source'] !== undefined || payload['card_spec'] !== undefined) return true;
  const cfg = payload['config'];
  return (
    isRecord(cfg) &&
    (cfg['default_source'] !== undefined ||
      cfg['default_card_asset'] !== undefined ||
      cfg['default_card_inline'] !== undefined)
  );
}

/**
 * Completes a card invocation: lifts `config.default_*` into `card_source`/`card_spec` when absent,
 * inlines an `asset` card from the pack (the component may not see the pack's files), adds the pack's
 * i18n bundles as `card_spec.i18n_inline` (the requested locale's chain plus `en`), and sets `locale`.
 */
export function prepareCardInvocation(
  payload: Record<string, unknown>,
  assets: PackAssets | undefined,
  locale: string | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...payload };
  const cfg = isRecord(payload['config']) ? payload['config'] : {};
  const spec: Record<string, unknown> = isRecord(payload['card_spec']) ? { ...payload['card_spec'] } : {};
  if (out['card_source'] === undefined) {
    const source = cfg['default_source'];
    if (typeof source === 'string') out['card_source'] = source;
    if (spec['asset_path'] === undefined && typeof cfg['default_card_asset'] === 'string')
      spec['asset_path'] = cfg['default_card_asset'];
    if (spec['inline_json'] === undefined && isRecord(cfg['default_card_inline']))
      spec['inline_json'] = cfg['default_card_inline'];
    if (out['card_source'] === undefined) out['card_source'] = spec['inline_json'] ? 'inline' : 'asset';
  }
  if (assets && out['card_source'] === 'asset' && typeof spec['asset_path'] === 'string') {
    const card = readJsonAsset(assets, spec['asset_path']);
    if (isRecord(card)) {
      out['card_source'] = 'inline';
      spec['inline_json'] = card;
    }
  }
  if (assets && spec['i18n_inline'] === undefined) {
    const dir = typeof spec['i18n_bundle_path'] === 'string' ? spec['i18n_bundle_path'] : undefined;
    const bundles = i18nBundles(assets, dir);
    if (bundles.size > 0) {
      const inline: Record<string, unknown> = {};
      const best = pickLocale(bundles.keys(), locale);
      for (const l of new Set([best, 'en'])) {
        const b = l !== undefined ? bundles.get(l) : undefined;
        if (b) inline[l!] = b;
      }
      spec['i18n_inline'] = inline;
    }
  }
  out['card_spec'] = spec;
  if (out['locale'] === undefined && out['i18n_locale'] === undefined && locale) out['locale'] = locale;
  return out;
}

/** The Adaptive Card an output carries (`renderedCard`, also under a `session.wait`-style `response`). */
export function renderedCardOf(output: unknown): Record<string, unknown> | undefined {
  if (!isRecord(output)) return undefined;
  if (isRecord(output['renderedCard'])) return output['renderedCard'];
  const response = output['response'];
  if (output['status'] === 'pending' && isRecord(response) && isRecord(response['renderedCard']))
    return response['renderedCard'];
  return undefined;
}

/** `{"error": {"code", "message"}}`: how upstream components (the card component) report failure with ok=true. */
export function componentErrorOf(output: unknown): { code: string; message: string } | undefined {
  if (!isRecord(output) || !isRecord(output['error'])) return undefined;
  const e = output['error'];
  if (typeof e['code'] !== 'string' && typeof e['message'] !== 'string') return undefined;
  const code = typeof e['code'] === 'string' ? e['code'] : 'component_error';
  return { code, message: typeof e['message'] === 'string' ? e['message'] : code };
}

/** A card reply, with any `{{i18n:key}}` the component left in it resolved from the pack's strings. */
export function cardReply(card: Record<string, unknown>, i18n: I18nLookup | undefined): OutboundReply {
  return { card: (i18n ? resolveI18nTokens(card, i18n) : card) as Record<string, unknown> };
}

const ADAPTIVE_CARD = 'application/vnd.microsoft.card.adaptive';

/** One message of an `emit.response` payload (a ChannelMessageEnvelope-like object, or text). */
function replyOfMessage(m: unknown, i18n: I18nLookup | undefined): OutboundReply | undefined {
  if (typeof m === 'string') return m === '' ? undefined : { text: m };
  if (!isRecord(m)) return undefined;
  const card = renderedCardOf(m);
  if (card) return cardReply(card, i18n);
  const reply: OutboundReply = {};
  if (typeof m['text'] === 'string' && m['text'] !== '') reply.text = m['text'];
  const meta = m['metadata'];
  const ac = isRecord(meta) ? meta['adaptive_card'] : undefined;
  if (typeof ac === 'string') {
    try {
      const parsed = JSON.parse(ac) as unknown;
      if (isRecord(parsed)) reply.card = parsed;
    } catch {
      // Not JSON: the text still goes out.
    }
  } else if (isRecord(ac)) {
    reply.card = ac;
  }
  if (isRecord(m['card'])) reply.card = m['card'];
  if (Array.isArray(m['attachments'])) {
    for (const a of m['attachments']) {
      if (isRecord(a) && a['contentType'] === ADAPTIVE_CARD && isRecord(a['content']))
        reply.card = a['content'];
    }
  }
  if (Array.isArray(m['choices'])) reply.choices = m['choices'].map(String);
  if (reply.card && i18n) reply.card = resolveI18nTokens(reply.card, i18n) as Record<string, unknown>;
  return Object.keys(reply).length > 0 ? reply : undefined;
}

/**
 * The replies an `emit.response` payload stands for: the payload is `input`, `payload` or itself;
 * a list, `messages[]`, `message`, a card, `text` or a string.
 */
export function repliesOfEmit(payload: unknown, i18n: I18nLookup | undefined): OutboundReply[] {
  let p = payload;
  if (isRecord(p) && p['input'] !== undefined) p = p['input'];
  else if (isRecord(p) && p['payload'] !== undefined) p = p['payload'];
  let items: unknown[];
  if (Array.isArray(p)) items = p;
  else if (isRecord(p) && Array.isArray(p['messages'])) items = p['messages'];
  else if (isRecord(p) && p['message'] !== undefined) items = [p['message']];
  else items = [p];
  const out: OutboundReply[] = [];
  for (const m of items) {
    const r = replyOfMessage(m, i18n);
    if (r) out.push(r);
  }
  return out;
}
