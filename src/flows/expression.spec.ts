import { describe, expect, it } from 'vitest';
import { compileExpression, ExpressionError, truthy } from './expression.js';

const state = {
  in: { age: 21, name: 'Ada', tags: ['a', 'b'], 'q-x': 'dash' },
  forecast: { payload: { ok: true, items: [{ name: 'Mon' }] } },
  message: { text: 'hello' },
};

const holds = (src: string): boolean => truthy(compileExpression(src)(state));

describe('condition expressions', () => {
  it('compares numbers, strings and booleans', () => {
    expect(holds('in.age >= 18')).toBe(true);
    expect(holds('in.age < 18')).toBe(false);
    expect(holds('forecast.payload.ok == true && message.text != "stop"')).toBe(true);
    expect(holds("message.text == 'hello'")).toBe(true);
    expect(holds('in.age > -1')).toBe(true);
    expect(holds('in.name === "Ada"')).toBe(true);
  });

  it('supports and/or/not, parentheses, indexes and length', () => {
    expect(holds('not (in.age < 18 or in.name == "Bob")')).toBe(true);
    expect(holds('!forecast.payload.ok || in.age == 21')).toBe(true);
    expect(holds('forecast.payload.items[0].name == "Mon"')).toBe(true);
    expect(holds('forecast.payload.items.0.name == "Mon"')).toBe(true);
    expect(holds('in.tags.length == 2')).toBe(true);
    expect(holds('in["q-x"] == "dash"')).toBe(true);
  });

  it('treats missing paths as null and never compares mismatched types', () => {
    expect(holds('in.missing == null')).toBe(true);
    expect(holds('in.missing.deeper')).toBe(false);
    expect(holds('in.name > 3')).toBe(false);
    expect(holds('in.age == "21"')).toBe(false);
  });

  it('does not reach the prototype chain', () => {
    expect(compileExpression('in.constructor')(state)).toBeNull();
    expect(compileExpression('in.__proto__')(state)).toBeNull();
    expect(compileExpression('message.text.length')(state)).toBe(5);
  });

  it('rejects bad syntax with the offset', () => {
    expect(() => compileExpression('in.age >=')).toThrow(ExpressionError);
    expect(() => compileExpression('in.age >= 18 18')).toThrow("unexpected '18'");
    expect(() => compileExpression('in.age + 1')).toThrow("unexpected character '+'");
    expect(() => compileExpression('"open')).toThrow('unterminated string');
    expect(() => compileExpression('('.repeat(100) + '1' + ')'.repeat(100))).toThrow('nests too deeply');
    try {
      compileExpression('in.a == (1');
    } catch (e) {
      expect((e as ExpressionError).offset).toBe(10);
    }
  });
});
