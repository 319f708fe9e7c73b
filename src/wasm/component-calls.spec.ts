import { describe, expect, it } from 'vitest';
import { parseData } from './component-calls.js';

describe('parseData (0.1 components answer text)', () => {
  it('reads JSON values as JSON', () => {
    expect(parseData('{"a":1}')).toEqual({ a: 1 });
    expect(parseData(' [1, 2]')).toEqual([1, 2]);
    expect(parseData('"quoted"')).toBe('quoted');
    expect(parseData('-4.5')).toBe(-4.5);
    expect(parseData('true')).toBe(true);
    expect(parseData('null')).toBeNull();
  });

  it('keeps anything else as the text itself, even when it starts like JSON', () => {
    expect(parseData('Hi there! Your forecast is sunny.')).toBe('Hi there! Your forecast is sunny.');
    expect(parseData('{not json')).toBe('{not json');
    expect(parseData('12 apples')).toBe('12 apples');
    expect(parseData('trueish')).toBe('trueish');
    expect(parseData('')).toBe('');
  });
});
