import { PayloadTooDeepError, PayloadTooManyKeysError } from './errors.js';

/**
 * How deep and how wide a JSON body may be (bundle `limits.max_json_depth` / `max_json_keys`).
 * JSON.parse itself copes with any depth, but JSON.stringify, Fastify's reply serialiser and every
 * recursive walk downstream overflow the stack somewhere past a few thousand levels.
 */
export interface JsonLimits {
  /** Arrays and objects open at once. */
  maxJsonDepth: number;
  /** Object keys in the whole document. */
  maxJsonKeys: number;
}

/**
 * 64 levels is System.Text.Json's and Json.NET's default, so no Bot Framework payload is deeper;
 * 10,000 keys is far more than any provider sends (Teams caps a bot message at about 28 KB).
 */
export const DEFAULT_JSON_LIMITS: Readonly<JsonLimits> = { maxJsonDepth: 64, maxJsonKeys: 10_000 };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * Refuses `text` if its nesting or key count passes `limits`, without parsing it: brackets and
 * colons are counted outside strings (a colon outside a string is a key's). Well-formed JSON is
 * measured exactly; malformed text is measured roughly and left to JSON.parse to refuse.
 */
export function checkJsonShape(text: string, limits: JsonLimits): void {
  const { maxJsonDepth, maxJsonKeys } = limits;
  const n = text.length;
  let depth = 0;
  let keys = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) i = closingQuote(text, i);
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxJsonDepth) throw new PayloadTooDeepError(maxJsonDepth);
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
    else if (c === COLON && ++keys > maxJsonKeys) throw new PayloadTooManyKeysError(maxJsonKeys);
  }
}

/** JSON.parse behind checkJsonShape: a SyntaxError for malformed text, a 400 GreenticError past the limits. */
export function parseBoundedJson(text: string, limits: JsonLimits): unknown {
  checkJsonShape(text, limits);
  return JSON.parse(text) as unknown;
}

/** Index of the quote closing the string opened at `open` (the text's length when unterminated). */
function closingQuote(text: string, open: number): number {
  let q = open;
  for (;;) {
    // indexOf skips the string's content natively: most of a provider payload is strings.
    q = text.indexOf('"', q + 1);
    if (q < 0) return text.length;
    let b = q - 1;
    while (text.charCodeAt(b) === BACKSLASH) b--;
    // An even run of backslashes escapes itself, not the quote.
    if ((q - 1 - b) % 2 === 0) return q;
  }
}
