import type { I18nLookup } from './mapping-template.js';

/**
 * A pack's i18n strings (`assets/i18n/<locale>.json`, flat `{ "key.path": "text" }` as upstream's demo
 * packs ship them) and the choice of a locale for a message: `xx-YY`, then `xx`, then `en`.
 * `_manifest.json` / `locales.json` (lists of locale codes) are indexes, not bundles, and are skipped.
 */

export type PackAssets = ReadonlyMap<string, Uint8Array>;
export type I18nBundle = Record<string, string>;

export const DEFAULT_I18N_DIR = 'assets/i18n';
const INDEX_FILES = new Set(['_manifest', 'locales']);
const LOCALE = /^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$/;

const decoder = new TextDecoder('utf-8', { fatal: true });
const BUNDLES = new WeakMap<PackAssets, Map<string, Map<string, I18nBundle>>>();

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** An asset by its archive path (`assets/x.json`) or by the path a directory pack listed it under. */
export function readAsset(assets: PackAssets, path: string): Uint8Array | undefined {
  const p = path.replace(/^\.?\//, '');
  return (
    assets.get(p) ??
    assets.get(`assets/${p}`) ??
    (p.startsWith('assets/') ? assets.get(p.slice(7)) : undefined)
  );
}

/** Parses an asset as JSON; undefined when absent or not JSON. */
export function readJsonAsset(assets: PackAssets, path: string): unknown {
  const bytes = readAsset(assets, path);
  if (!bytes) return undefined;
  try {
    return JSON.parse(decoder.decode(bytes)) as unknown;
  } catch {
    return undefined;
  }
}

/** Flattens nested bundles (`{card: {title: "x"}}` → `card.title`); values that are not text are dropped. */
function flatten(v: unknown, prefix: string, out: I18nBundle): void {
  if (typeof v === 'string') {
    if (prefix !== '') out[prefix] = v;
  } else if (isRecord(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix === '' ? k : `${prefix}.${k}`, out);
  }
}

/** Every bundle under `dir` by locale (normalised to `xx-YY`), read once per pack. */
export function i18nBundles(assets: PackAssets, dir = DEFAULT_I18N_DIR): Map<string, I18nBundle> {
  let byDir = BUNDLES.get(assets);
  if (!byDir) BUNDLES.set(assets, (byDir = new Map()));
  const key = dir.replace(/^\.?\//, '').replace(/\/$/, '');
  let bundles = byDir.get(key);
  if (bundles) return bundles;
  bundles = new Map();
  const prefixes = [`${key}/`, key.startsWith('assets/') ? `${key.slice(7)}/` : `assets/${key}/`];
  for (const path of assets.keys()) {
    const prefix = prefixes.find((p) => path.startsWith(p));
    if (!prefix || !path.endsWith('.json')) continue;
    const name = path.slice(prefix.length, -5);
    if (name.includes('/') || INDEX_FILES.has(name) || !LOCALE.test(name)) continue;
    const json = readJsonAsset(assets, path);
    const flat: I18nBundle = {};
    flatten(json, '', flat);
    bundles.set(normaliseLocale(name), flat);
  }
  byDir.set(key, bundles);
  return bundles;
}

/** `en_us` / `EN-us` → `en-US`. */
export function normaliseLocale(locale: string): string {
  const [lang = '', ...rest] = locale.trim().split(/[-_]/);
  return [lang.toLowerCase(), ...rest.map((r) => (r.length === 2 ? r.toUpperCase() : r))].join('-');
}

/** The locales to try for a requested one, best first: `de-CH` → `de-CH`, `de`, `en`. */
export function localeChain(requested: string | undefined): string[] {
  const chain: string[] = [];
  if (requested && LOCALE.test(requested.trim())) {
    const parts = normaliseLocale(requested).split('-');
    for (let i = parts.length; i >= 1; i--) chain.push(parts.slice(0, i).join('-'));
  }
  if (!chain.includes('en')) chain.push('en');
  return chain;
}

/** The best locale the pack has for a request, by `localeChain`; undefined when it has none of them. */
export function pickLocale(available: Iterable<string>, requested: string | undefined): string | undefined {
  const have = new Set(available);
  return localeChain(requested).find((l) => have.has(l));
}

/**
 * Looks keys up in the message's locale, falling back along the chain key by key (a key missing
 * from `de.json` still reads from `en.json`). Undefined when the pack has no bundles.
 */
export function i18nLookupFor(
  assets: PackAssets | undefined,
  locale: string | undefined,
): I18nLookup | undefined {
  if (!assets) return undefined;
  const bundles = i18nBundles(assets);
  if (bundles.size === 0) return undefined;
  const chain = localeChain(locale)
    .map((l) => bundles.get(l))
    .filter((b): b is I18nBundle => b !== undefined);
  return (key) => {
    for (const b of chain) {
      const v = b[key];
      if (v !== undefined && v !== '') return v;
    }
    return undefined;
  };
}

const MERGED = new WeakMap<PackAssets, Map<string, Readonly<I18nBundle>>>();
const NO_STRINGS: Readonly<I18nBundle> = Object.freeze({});

/**
 * Every string for a locale, merged along its chain (`en`, then `xx`, then `xx-YY` on top; empty
 * strings do not override), read once per pack and locale. Empty when the pack has no bundles.
 */
export function i18nStrings(
  assets: PackAssets | undefined,
  locale: string | undefined,
): Readonly<I18nBundle> {
  if (!assets) return NO_STRINGS;
  const bundles = i18nBundles(assets);
  if (bundles.size === 0) return NO_STRINGS;
  const chain = localeChain(locale);
  const key = chain.join('>');
  let byLocale = MERGED.get(assets);
  if (!byLocale) MERGED.set(assets, (byLocale = new Map()));
  let merged = byLocale.get(key);
  if (!merged) {
    const out: I18nBundle = {};
    for (const l of [...chain].reverse()) {
      for (const [k, v] of Object.entries(bundles.get(l) ?? {})) if (v !== '') out[k] = v;
    }
    merged = Object.freeze(out);
    byLocale.set(key, merged);
  }
  return merged;
}
