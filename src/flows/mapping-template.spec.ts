import { describe, expect, it } from 'vitest';
import { compileMapping, resolveI18nTokens } from './mapping-template.js';
import { i18nLookupFor, localeChain, pickLocale } from './pack-i18n.js';

const scope = {
  in: { input: { text: 'hello', metadata: { action: 'go' } }, event_type: 'msg' },
  prev: { messages: [{ type: 'text', text: 'a' }], data: { n: 1 } },
  node: { extract: { kind: 'x' } },
  session: { name: 'Ada' },
};

describe('flow-v1 mapping templates', () => {
  it('inserts the typed value for a string that is exactly one {{path}}', () => {
    const m = compileMapping({
      message: '{{in.input}}',
      messages: '{{ prev.messages }}',
      first: '{{prev.messages[0].text}}',
      missing: '{{in.nope}}',
      literal: 'component-msg2events',
      n: 3,
      list: ['{{session.name}}', true],
    });
    expect(m(scope)).toEqual({
      message: { text: 'hello', metadata: { action: 'go' } },
      messages: [{ type: 'text', text: 'a' }],
      first: 'a',
      missing: null,
      literal: 'component-msg2events',
      n: 3,
      list: ['Ada', true],
    });
  });

  it('interpolates other strings: text as is, values as JSON, missing as nothing', () => {
    const m = compileMapping(
      'Received: {{in.input.text}} {{prev.data}} [{{in.nope}}] from {{node.extract.kind}}',
    );
    expect(m(scope)).toBe('Received: hello {"n":1} [] from x');
  });

  it('reads a root the scope lacks from prev, then from in (upstream: {{data}}, {{event_type}})', () => {
    expect(compileMapping('{{data}}')(scope)).toEqual({ n: 1 });
    expect(compileMapping('{{event_type}}!')(scope)).toBe('msg!');
  });

  it('leaves Handlebars blocks and helpers as written', () => {
    expect(compileMapping('{{#if x}}y{{/if}} {{in.input.text}}')(scope)).toBe('{{#if x}}y{{/if}} hello');
  });

  it('resolves {{i18n:key}} with the lookup, keeping unknown keys as written', () => {
    const i18n = (k: string) => (k === 'card.title' ? 'Titel' : undefined);
    expect(compileMapping('{{i18n:card.title}} / {{i18n:other}}')(scope, i18n)).toBe(
      'Titel / {{i18n:other}}',
    );
    expect(resolveI18nTokens({ body: [{ text: '{{i18n:card.title}}' }], n: 1 }, i18n)).toEqual({
      body: [{ text: 'Titel' }],
      n: 1,
    });
  });
});

describe('pack i18n', () => {
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const assets = new Map([
    ['assets/i18n/en.json', enc({ hello: 'Hello', bye: 'Bye', nested: { key: 'Nested' } })],
    ['assets/i18n/de.json', enc({ hello: 'Hallo', bye: '' })],
    ['assets/i18n/pt-BR.json', enc({ hello: 'Olá' })],
    ['assets/i18n/_manifest.json', enc(['en', 'de', 'pt-BR'])],
  ]);

  it('chains xx-YY → xx → en', () => {
    expect(localeChain('de-CH')).toEqual(['de-CH', 'de', 'en']);
    expect(localeChain('pt_br')).toEqual(['pt-BR', 'pt', 'en']);
    expect(localeChain(undefined)).toEqual(['en']);
    expect(localeChain('not a locale!')).toEqual(['en']);
    expect(pickLocale(['en', 'de'], 'de-AT')).toBe('de');
    expect(pickLocale(['en', 'pt-BR'], 'pt-BR')).toBe('pt-BR');
    expect(pickLocale(['fr'], 'de')).toBeUndefined();
  });

  it('looks keys up along the chain, key by key, from flat or nested bundles', () => {
    const de = i18nLookupFor(assets, 'de-CH')!;
    expect(de('hello')).toBe('Hallo');
    expect(de('bye')).toBe('Bye');
    expect(de('nested.key')).toBe('Nested');
    expect(de('absent')).toBeUndefined();
    expect(i18nLookupFor(assets, 'pt-BR')!('hello')).toBe('Olá');
    expect(i18nLookupFor(assets, undefined)!('hello')).toBe('Hello');
    expect(i18nLookupFor(new Map(), 'de')).toBeUndefined();
  });
});
