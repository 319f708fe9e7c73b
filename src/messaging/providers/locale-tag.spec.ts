import { describe, expect, it } from 'vitest';
import { isLocaleTag, localeOf } from './locale-tag.js';

describe('locale tags', () => {
  it('accepts the tags channels send and refuses what is not one', () => {
    for (const ok of ['en', 'de-CH', 'zh-Hant-TW', 'pt-br', 'de_CH', 'es-419'])
      expect(isLocaleTag(ok), ok).toBe(true);
    for (const bad of ['', 'e', 'english', 'en-', 'en--US', 'en US', '<script>', 'en-' + 'x'.repeat(40)])
      expect(isLocaleTag(bad), bad).toBe(false);
    expect(localeOf('fr')).toBe('fr');
    expect(localeOf(42)).toBeUndefined();
    expect(localeOf('not a tag')).toBeUndefined();
  });
});
