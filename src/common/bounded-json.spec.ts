import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkJsonShape, DEFAULT_JSON_LIMITS, parseBoundedJson } from './bounded-json.js';
import { PayloadTooDeepError, PayloadTooManyKeysError } from './errors.js';

const limits = (maxJsonDepth: number, maxJsonKeys = 1_000) => ({ maxJsonDepth, maxJsonKeys });

/** Depth and key count by walking the parsed value: what the scan must agree with. */
function measure(v: unknown, depth = 0): { depth: number; keys: number } {
  if (v === null || typeof v !== 'object') return { depth, keys: 0 };
  const children = Array.isArray(v) ? v : Object.values(v);
  let deepest = depth + 1;
  let keys = Array.isArray(v) ? 0 : children.length;
  for (const c of children) {
    const m = measure(c, depth + 1);
    deepest = Math.max(deepest, m.depth);
    keys += m.keys;
  }
  return { depth: deepest, keys };
}

const FIXTURES = path.resolve('test/fixtures/providers');
const providerPayloads = readdirSync(FIXTURES).flatMap((dir) =>
  readdirSync(path.join(FIXTURES, dir))
    .filter((f) => f.endsWith('.json'))
    .map((f) => [`${dir}/${f}`, readFileSync(path.join(FIXTURES, dir, f), 'utf8')] as const),
);

describe('checkJsonShape', () => {
  it('takes a body at exactly the depth limit and refuses one level more, for arrays and objects', () => {
    expect(() => checkJsonShape('[[[1]]]', limits(3))).not.toThrow();
    expect(() => checkJsonShape('[[[[1]]]]', limits(3))).toThrow(PayloadTooDeepError);
    expect(() => checkJsonShape('{"a":{"b":{"c":1}}}', limits(3))).not.toThrow();
    expect(() => checkJsonShape('{"a":{"b":{"c":[1]}}}', limits(3))).toThrow(PayloadTooDeepError);
    // Siblings do not add up: depth is what is open at once.
    expect(() => checkJsonShape('[[1],[2],{"a":[3]},[[4]]]', limits(3))).not.toThrow();
  });

  it('refuses past the key limit, counting keys of every object in the document', () => {
    expect(() => checkJsonShape('{"a":1,"b":{"c":2}}', limits(8, 3))).not.toThrow();
    expect(() => checkJsonShape('{"a":1,"b":{"c":2,"d":3}}', limits(8, 3))).toThrow(PayloadTooManyKeysError);
    expect(() => checkJsonShape(JSON.stringify([{ a: 1 }, { b: 2 }, { c: 3 }]), limits(8, 2))).toThrow(
      PayloadTooManyKeysError,
    );
  });

  it('does not count brackets, braces or colons inside strings, escaped quotes included', () => {
    const tricky = JSON.stringify({
      text: '[[[[{{{{: : :',
      quoted: 'say "[[[[" and \\ then [[[[',
      backslashes: '\\\\',
      after: '{{{{',
      'key:[{': '}]',
    });
    expect(() => checkJsonShape(tricky, limits(1, 5))).not.toThrow();
    expect(parseBoundedJson(tricky, limits(1, 5))).toEqual(JSON.parse(tricky));
  });

  it('measures every provider payload of the fixtures exactly, as a walk of the parsed value does', () => {
    expect(providerPayloads.length).toBeGreaterThan(10);
    for (const [name, text] of providerPayloads) {
      const { depth, keys } = measure(JSON.parse(text));
      expect(() => checkJsonShape(text, limits(depth, keys)), name).not.toThrow();
      expect(() => checkJsonShape(text, limits(depth - 1, keys)), name).toThrow(PayloadTooDeepError);
      if (keys > 0)
        expect(() => checkJsonShape(text, limits(depth, keys - 1)), name).toThrow(PayloadTooManyKeysError);
      expect(() => checkJsonShape(text, DEFAULT_JSON_LIMITS), name).not.toThrow();
    }
  });

  it('refuses a 120,000-deep array or object chain at the limit, without a stack overflow', () => {
    const d = 120_000;
    for (const hostile of ['['.repeat(d) + ']'.repeat(d), '{"a":'.repeat(d) + '1' + '}'.repeat(d)]) {
      let err: unknown;
      try {
        checkJsonShape(hostile, DEFAULT_JSON_LIMITS);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PayloadTooDeepError);
      expect(err).toMatchObject({ code: 'payload_too_deep', httpStatus: 400, details: { maxDepth: 64 } });
    }
  });

  it('leaves malformed text to JSON.parse, and ends on an unterminated string', () => {
    expect(() => checkJsonShape('{"a": "never closed', limits(4))).not.toThrow();
    expect(() => parseBoundedJson('{"a": "never closed', limits(4))).toThrow(SyntaxError);
    expect(() => parseBoundedJson(']]]][[[[', limits(4))).toThrow(SyntaxError);
  });
});
