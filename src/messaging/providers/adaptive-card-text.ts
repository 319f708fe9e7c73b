import { DEFAULT_JSON_LIMITS, parseBoundedJson } from '../../common/bounded-json.js';

/**
 * Adaptive Cards on channels that cannot render them (Slack, Telegram, WhatsApp, and the generic
 * webhook's `text`): the card's body read as lines of text, its Submit/Execute actions as buttons
 * that carry the action's `data` back, its OpenUrl actions as links. Teams and Web Chat get the
 * card itself.
 */

export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';

/** One button of the fallback: a Submit (with `data`, or `text` for a string `data`) or a link. */
export interface CardButton {
  title: string;
  /** The Submit/Execute data: what comes back as the message's `action` when it is tapped. */
  data?: Record<string, unknown>;
  /** A Submit whose `data` is a string comes back as that text (as Web Chat sends it). */
  text?: string;
  url?: string;
}

export interface CardFallback {
  /** The card's first heading-like TextBlock, when the card starts with one. */
  title?: string;
  /** Readable body lines, in card order. */
  lines: string[];
  images: { url: string; alt?: string }[];
  buttons: CardButton[];
}

type Json = Record<string, unknown>;

function isRecord(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const s = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);

/** An Adaptive Card (`type: AdaptiveCard`, or an adaptivecards.io `$schema` with a body). */
export function isAdaptiveCard(card: Json | undefined): card is Json {
  if (!card) return false;
  if (card['type'] === 'AdaptiveCard') return true;
  return Array.isArray(card['body']) && /adaptivecards\.io/.test(String(card['$schema'] ?? ''));
}

/** The card as an attachment's content: `type: AdaptiveCard` added when only its `$schema` said so. */
export function asAdaptiveCardContent(card: Json): Json {
  return card['type'] === 'AdaptiveCard' ? card : { type: 'AdaptiveCard', ...card };
}

/** Bounds on how much of a hostile or runaway card is walked. */
const MAX_DEPTH = 32;
const MAX_LINES = 200;
const MAX_BUTTONS = 50;

interface Walk {
  out: CardFallback;
  choiceSets: { id: string; choices: { title: string; value: string }[] }[];
}

/**
 * Reads an Adaptive Card as text: TextBlock text, RichTextBlock inlines, FactSet facts as
 * `title: value`, Image alt text (or URL), Container/ColumnSet/Column/Table children, input
 * labels with a ChoiceSet's choices as `• option` lines; ShowCard cards inline under their title.
 * Hidden elements (`isVisible: false`) are skipped; an unknown element uses its `fallback`
 * element. With nothing readable in the body, the card's `fallbackText`, then `speak`.
 *
 * Buttons: Action.Submit/Action.Execute with their `data` (Execute adds its `verb`), OpenUrl as
 * links. A card whose only question is one single-choice ChoiceSet (and at most one Submit) gets
 * a button per choice that submits that choice under the input's id, so a channel without form
 * inputs can still answer it.
 */
export function adaptiveCardFallback(card: Json): CardFallback {
  const w: Walk = { out: { lines: [], images: [], buttons: [] }, choiceSets: [] };
  const body = Array.isArray(card['body']) ? card['body'] : [];
  const first: unknown = body[0];
  let start = 0;
  if (isRecord(first) && first['type'] === 'TextBlock' && isHeading(first) && s(first['text'])) {
    w.out.title = clean(first['text'] as string);
    start = 1;
  }
  walkElements(body.slice(start), w, 0);
  walkActions(card['actions'], w, 0);
  const inputs = countInputs(body);
  const submits = w.out.buttons.filter((b) => !b.url);
  const set = w.choiceSets[0];
  if (w.choiceSets.length === 1 && inputs === 1 && set && submits.length <= 1) {
    const base = submits[0]?.data ?? {};
    const choiceButtons = set.choices.map((c) => ({ title: c.title, data: { ...base, [set.id]: c.value } }));
    w.out.buttons = [...choiceButtons, ...w.out.buttons.filter((b) => b.url)];
  }
  if (w.out.lines.length === 0 && !w.out.title) {
    const alt =
      s(card['fallbackText']) ?? (s(card['speak']) ? stripSsml(card['speak'] as string) : undefined);
    if (alt) w.out.lines.push(alt);
  }
  w.out.buttons = w.out.buttons.slice(0, MAX_BUTTONS);
  return w.out;
}

/** The card as plain text: title, body lines, then `title: url` for each link. */
export function adaptiveCardText(card: Json): string {
  const fb = adaptiveCardFallback(card);
  return fallbackText(fb, { links: true });
}

/** Plain text of a fallback; `links` adds `title: url` lines for OpenUrl actions. */
export function fallbackText(fb: CardFallback, opts: { links: boolean }): string {
  const lines = [fb.title, ...fb.lines];
  if (opts.links) for (const b of fb.buttons) if (b.url) lines.push(`${b.title}: ${b.url}`);
  return lines.filter((l): l is string => Boolean(l)).join('\n');
}

function isHeading(tb: Json): boolean {
  return (
    tb['style'] === 'heading' ||
    /^bold(er)?$/i.test(String(tb['weight'] ?? '')) ||
    /^(large|extraLarge)$/i.test(String(tb['size'] ?? ''))
  );
}

/** Adaptive Cards TextBlocks may hold a subset of Markdown; `**x**` and `_x_` read fine as is. */
function clean(text: string): string {
  return text.replace(/\r\n/g, '\n').trim();
}

function stripSsml(text: string): string {
  return text
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function push(w: Walk, line: string | undefined): void {
  if (line && w.out.lines.length < MAX_LINES) w.out.lines.push(line);
}

function walkElements(items: unknown, w: Walk, depth: number): void {
  if (!Array.isArray(items) || depth > MAX_DEPTH) return;
  for (const el of items) if (isRecord(el)) walkElement(el, w, depth);
}

function walkElement(el: Json, w: Walk, depth: number): void {
  if (el['isVisible'] === false) return;
  switch (el['type']) {
    case 'TextBlock':
      push(w, s(el['text']) && clean(el['text'] as string));
      return;
    case 'RichTextBlock': {
      const inlines = Array.isArray(el['inlines']) ? el['inlines'] : [];
      const text = inlines
        .map((i) => (typeof i === 'string' ? i : isRecord(i) ? (s(i['text']) ?? '') : ''))
        .join('');
      push(w, s(text) && clean(text));
      return;
    }
    case 'FactSet':
      for (const f of Array.isArray(el['facts']) ? el['facts'] : []) {
        if (!isRecord(f)) continue;
        const title = s(f['title']);
        const value = s(f['value']);
        push(w, title && value ? `${title}: ${value}` : (title ?? value));
      }
      return;
    case 'Image': {
      const url = s(el['url']);
      const alt = s(el['altText']);
      if (url) w.out.images.push({ url, ...(alt ? { alt } : {}) });
      push(w, alt ?? url);
      return;
    }
    case 'ImageSet':
      walkElements(el['images'], w, depth + 1);
      return;
    case 'Container':
      walkElements(el['items'], w, depth + 1);
      walkAction(el['selectAction'], w, depth, true);
      return;
    case 'ColumnSet':
      walkColumns(Array.isArray(el['columns']) ? el['columns'] : [], w, depth);
      return;
    case 'Column':
      walkElements(el['items'], w, depth + 1);
      return;
    case 'Table':
      for (const row of Array.isArray(el['rows']) ? el['rows'] : []) {
        if (!isRecord(row)) continue;
        walkColumns(Array.isArray(row['cells']) ? row['cells'] : [], w, depth);
      }
      return;
    case 'ActionSet':
      walkActions(el['actions'], w, depth + 1);
      return;
    case 'Input.ChoiceSet': {
      push(w, s(el['label']) ?? s(el['placeholder']));
      const choices: { title: string; value: string }[] = [];
      for (const c of Array.isArray(el['choices']) ? el['choices'] : []) {
        if (!isRecord(c)) continue;
        const title = s(c['title']) ?? s(c['value']);
        if (!title) continue;
        choices.push({ title, value: s(c['value']) ?? title });
        push(w, `• ${title}`);
      }
      const id = s(el['id']);
      if (id && el['isMultiSelect'] !== true && choices.length > 0) w.choiceSets.push({ id, choices });
      return;
    }
    case 'Input.Text':
    case 'Input.Number':
    case 'Input.Date':
    case 'Input.Time':
      push(w, s(el['label']) ?? s(el['placeholder']));
      return;
    case 'Input.Toggle':
      push(w, s(el['label']) ?? s(el['title']));
      return;
    default:
      // An element this reader does not know: its declared fallback element, if any.
      if (isRecord(el['fallback'])) walkElement(el['fallback'], w, depth + 1);
  }
}

/** Columns (or table cells) side by side: one line joined by ` | ` when each holds one line. */
function walkColumns(columns: unknown[], w: Walk, depth: number): void {
  const parts: CardFallback[] = [];
  for (const col of columns) {
    if (!isRecord(col) || col['isVisible'] === false) continue;
    const sub: Walk = { out: { lines: [], images: [], buttons: [] }, choiceSets: w.choiceSets };
    walkElements(col['items'], sub, depth + 1);
    walkAction(col['selectAction'], sub, depth, true);
    parts.push(sub.out);
  }
  if (parts.every((p) => p.lines.length <= 1)) {
    push(
      w,
      parts
        .map((p) => p.lines[0])
        .filter(Boolean)
        .join(' | ') || undefined,
    );
  } else {
    for (const p of parts) for (const l of p.lines) push(w, l);
  }
  for (const p of parts) {
    w.out.images.push(...p.images);
    w.out.buttons.push(...p.buttons);
  }
}

function walkActions(actions: unknown, w: Walk, depth: number): void {
  if (!Array.isArray(actions) || depth > MAX_DEPTH) return;
  for (const a of actions) walkAction(a, w, depth, false);
}

function walkAction(a: unknown, w: Walk, depth: number, select: boolean): void {
  if (!isRecord(a) || w.out.buttons.length >= MAX_BUTTONS) return;
  const title = s(a['title']) ?? (select ? undefined : s(a['tooltip']));
  switch (a['type']) {
    case 'Action.Submit':
    case 'Action.Execute': {
      if (!title) return;
      const raw = a['data'];
      if (typeof raw === 'string') {
        w.out.buttons.push({ title, text: raw });
        return;
      }
      const data: Json = isRecord(raw) ? { ...raw } : {};
      const verb = s(a['verb']);
      if (a['type'] === 'Action.Execute' && verb && data['verb'] === undefined) data['verb'] = verb;
      w.out.buttons.push({ title, data });
      return;
    }
    case 'Action.OpenUrl': {
      const url = s(a['url']);
      if (title && url) w.out.buttons.push({ title, url });
      return;
    }
    case 'Action.ShowCard': {
      // No card in a card on a text channel: what it would show follows, under its title.
      const inner = a['card'];
      if (!isRecord(inner)) return;
      push(w, title);
      walkElements(inner['body'], w, depth + 1);
      walkActions(inner['actions'], w, depth + 1);
      return;
    }
    default:
      // ToggleVisibility and unknown actions do nothing on a text channel.
      return;
  }
}

function countInputs(items: unknown, depth = 0): number {
  if (depth > MAX_DEPTH) return 0;
  if (Array.isArray(items)) return items.reduce<number>((n, i) => n + countInputs(i, depth + 1), 0);
  if (!isRecord(items)) return 0;
  let n = typeof items['type'] === 'string' && items['type'].startsWith('Input.') ? 1 : 0;
  for (const k of ['items', 'columns', 'rows', 'cells'] as const) n += countInputs(items[k], depth + 1);
  return n;
}

/**
 * Submit data as a button value within `maxBytes` (UTF-8), or undefined when it does not fit:
 * `~?a=b&c=d` for flat string-only data (compact: Telegram allows 64 bytes), else `~` + JSON.
 * Plain choice values never start with `~` (providers map those to an index), so the two never mix.
 */
export function encodeCardSubmit(data: Record<string, unknown>, maxBytes: number): string | undefined {
  const entries = Object.entries(data);
  let v: string;
  if (entries.length > 0 && entries.every(([, x]) => typeof x === 'string')) {
    v = '~?' + new URLSearchParams(entries as [string, string][]).toString();
  } else {
    v = '~' + JSON.stringify(data);
  }
  return Buffer.byteLength(v) <= maxBytes ? v : undefined;
}

/** The Submit data a button value carries (`encodeCardSubmit`'s forms), or undefined for any other value. */
export function decodeCardSubmit(value: string): Record<string, unknown> | undefined {
  if (value.startsWith('~?')) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of new URLSearchParams(value.slice(2))) out[k] = v;
    return out;
  }
  if (value.startsWith('~{')) {
    try {
      const parsed = parseBoundedJson(value.slice(1), DEFAULT_JSON_LIMITS);
      return isRecord(parsed) ? parsed : undefined;
    } catch {
      // Malformed or too deep: not ours, read as a plain value.
      return undefined;
    }
  }
  return undefined;
}

/** Keys a Submit's data usually names its meaning with, in the order a reader would look. */
const ECHO_KEYS = ['choice', 'value', 'action', 'action_id', 'actionId', 'verb', 'id'];

/**
 * A readable text for a Submit that came without any (Web Chat and Teams send the data alone):
 * the data's naming field, else its string values, else its JSON.
 */
export function submitEcho(data: Record<string, unknown>): string {
  for (const k of ECHO_KEYS) {
    const v = data[k];
    if (typeof v === 'string' && v !== '') return v;
  }
  const strings = Object.entries(data)
    .filter(([k, v]) => k !== 'type' && typeof v === 'string' && v !== '')
    .map(([, v]) => v as string);
  if (strings.length > 0) return strings.join(' ');
  const { type: _type, ...rest } = data;
  return Object.keys(rest).length > 0 ? JSON.stringify(rest) : '';
}
