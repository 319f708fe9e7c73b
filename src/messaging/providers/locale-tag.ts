/**
 * A BCP-47-ish language tag as channels send it (`en`, `en-US`, `zh-Hant-TW`, Telegram's `pt-br`;
 * `de_CH` tolerated): a 2-3 letter language, then subtags of 1-8 letters or digits.
 */
const LOCALE_TAG = /^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$/;
const LOCALE_MAX = 35;

export function isLocaleTag(v: string): boolean {
  return v.length <= LOCALE_MAX && LOCALE_TAG.test(v);
}

/** The tag when `v` is one, else undefined: a platform's odd value is left out, never refused. */
export function localeOf(v: unknown): string | undefined {
  return typeof v === 'string' && isLocaleTag(v) ? v : undefined;
}
