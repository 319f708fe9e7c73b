import { describe, expect, it } from 'vitest';
import { notAComponent, readableWatError } from './wasm-input-errors.js';

describe('notAComponent', () => {
  it('accepts a component preamble and names what anything else is', () => {
    expect(notAComponent(new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 7]))).toBeUndefined();
    expect(notAComponent(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))).toMatch(
      /^is a core WebAssembly module, not a component/,
    );
    expect(notAComponent(new TextEncoder().encode('<!DOCTYPE html><html>'))).toBe(
      'is not a WebAssembly file (it starts with text "<!DOCTYPE ht", not \\0asm)',
    );
    expect(notAComponent(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]))).toBe(
      'is not a WebAssembly file (it starts with bytes 89504e470d0a1a0a, not \\0asm)',
    );
    expect(notAComponent(new Uint8Array())).toBe('is empty, not a WebAssembly component');
  });
});

describe('readableWatError', () => {
  it("turns the parser's Rust Debug dump into 1-based line:col and its message", () => {
    const dump =
      'Error { kind: Wast(Error { inner: ErrorInner { text: Some(Text { line: 1, col: 42, snippet: "  (core module (func (result i32) i32.const)))" }), file: None, span: Span { offset: 53 }, kind: Custom("expected a i32") } }) }';
    expect(readableWatError(dump)).toBe('2:43: expected a i32');
    expect(readableWatError('Error { kind: Custom("unexpected \\"x\\"") , line: 0, col: 0 }')).toBe(
      '1:1: unexpected "x"',
    );
  });

  it('keeps the first line of a message of another shape', () => {
    expect(readableWatError('something else\nand more')).toBe('something else');
  });
});
