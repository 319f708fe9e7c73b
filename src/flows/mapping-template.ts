import { getPath } from './expression.js';

/**
 * flow-v1 mappings (`input.mapping`, `output.mapping`, `err_map`) as upstream Greentic writes them:
 * JSON whose strings may hold `{{path}}` templates (greentic-interfaces `docs/payload-and-state.md`).
 * A string that is exactly one `{{path}}` becomes the typed value at that path (an object stays an
 * object); any other string is interpolated (strings as they are, other values as JSON, a missing
 * value as nothing). `{{i18n:key}}` reads the pack's i18n bundle for the message's locale.
 *
 * Paths are dotted (`in.input.text`, `prev.messages[0]`); what they may start with is the caller's
 * scope (`in`, `entry`, `prev`, `node`, `nodes`, `state`, `parameters`, `session`, `message`,
 * `response`, node ids). A root the scope lacks is looked up in `prev`, then in `in`, as upstream's
 * older templates (`{{data}}`, `{{event_type}}`) name fields of the previous output directly.
 * Anything else in braces (Handlebars blocks, helpers) is left as written.
 */

export type MappingScope = Readonly<Record<string, unknown>>;

/** Looks up `{{i18n:key}}`; undefined leaves the token as written. */
export type I18nLookup = (key: string) => string | undefined;

export type MappingFn = (scope: MappingScope, i18n?: I18nLookup) => unknown;

const TOKEN = /\{\{\s*([^{}]*?)\s*\}\}/g;
const EXACT = /^\{\{\s*([^{}]*?)\s*\}\}$/;
const PATH = /^[A-Za-z_$][\w$-]*(?:\.[\w$-]+|\[\d+\])*$/;
const I18N = /^i18n:([\w.-]+)$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `a.b[0].c` → `['a', 'b', '0', 'c']`. */
function segments(path: string): string[] {
  return path
    .replace(/\[(\d+)\]/g, '.$1')
    .split('.')
    .filter((s) => s !== '');
}

function lookup(scope: MappingScope, segs: readonly string[]): unknown {
  const root = segs[0]!;
  if (Object.hasOwn(scope, root)) return getPath(scope, segs);
  for (const fallback of ['prev', 'in']) {
    const base = scope[fallback];
    if (isRecord(base) && Object.hasOwn(base, root)) return getPath(base, segs);
  }
  return undefined;
}

type Part = { text: string } | { path: string[] } | { i18n: string; raw: string };

function parse(text: string): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    const expr = m[1]!;
    const i18n = I18N.exec(expr);
    const at = m.index;
    if (!i18n && !PATH.test(expr)) continue;
    if (at > last) parts.push({ text: text.slice(last, at) });
    parts.push(i18n ? { i18n: i18n[1]!, raw: m[0] } : { path: segments(expr) });
    last = at + m[0].length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

function stringOf(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return v.toString();
  return JSON.stringify(v);
}

function compileString(text: string): MappingFn {
  if (!text.includes('{{')) return () => text;
  const exact = EXACT.exec(text);
  if (exact && PATH.test(exact[1]!)) {
    const segs = segments(exact[1]!);
    return (scope) => lookup(scope, segs) ?? null;
  }
  const parts = parse(text);
  if (parts.every((p) => 'text' in p)) return () => text;
  return (scope, i18n) => {
    let out = '';
    for (const p of parts) {
      if ('text' in p) out += p.text;
      else if ('path' in p) out += stringOf(lookup(scope, p.path));
      else out += i18n?.(p.i18n) ?? p.raw;
    }
    return out;
  };
}

/** Compiles a mapping once; the result renders it against a scope per call. */
export function compileMapping(value: unknown): MappingFn {
  if (typeof value === 'string') return compileString(value);
  if (Array.isArray(value)) {
    const items = value.map(compileMapping);
    return (scope, i18n) => items.map((m) => m(scope, i18n));
  }
  if (isRecord(value)) {
    const entries = Object.entries(value).map(([k, v]) => [k, compileMapping(v)] as const);
    return (scope, i18n) => {
      const out: Record<string, unknown> = {};
      for (const [k, m] of entries) out[k] = m(scope, i18n);
      return out;
    };
  }
  return () => value;
}

/** Replaces `{{i18n:key}}` tokens in every string of a JSON value (a card a component rendered). */
export function resolveI18nTokens(value: unknown, i18n: I18nLookup): unknown {
  if (typeof value === 'string') {
    if (!value.includes('{{')) return value;
    return value.replace(TOKEN, (whole, expr: string) => {
      const m = I18N.exec(expr);
      return m ? (i18n(m[1]!) ?? whole) : whole;
    });
  }
  if (Array.isArray(value)) return value.map((v) => resolveI18nTokens(v, i18n));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveI18nTokens(v, i18n);
    return out;
  }
  return value;
}
