import { describe, expect, it } from 'vitest';
import { capModuleMemory, pagesForBytes, WASM_PAGE_BYTES } from './memory-cap.js';

interface Wasm {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object, imports?: object): Promise<{ exports: Record<string, unknown> }>;
  Memory: new (d: { initial: number; maximum?: number }) => { buffer: ArrayBuffer; grow(n: number): number };
}
const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

async function assemble(text: string): Promise<Uint8Array> {
  const { parse } = await import('@bytecodealliance/jco');
  return parse(text);
}

describe('capModuleMemory', () => {
  it('gives an unbounded memory a maximum, and memory.grow past it fails in the guest', async () => {
    const bytes = await assemble(`(module
      (memory (export "memory") 1)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`);
    const capped = capModuleMemory(bytes, 4);
    expect(capped.changed).toBe(true);
    expect(capped.memories).toEqual([{ min: 1n, shared: false, memory64: false }]);
    const { exports } = await wasm.instantiate(await wasm.compile(capped.bytes));
    const grow = exports['grow'] as (n: number) => number;
    expect(grow(2)).toBe(1);
    expect(grow(1)).toBe(3);
    expect(grow(1)).toBe(-1);
    expect((exports['memory'] as { buffer: ArrayBuffer }).buffer.byteLength).toBe(4 * WASM_PAGE_BYTES);
    // The original module still grows freely.
    const free = await wasm.instantiate(await wasm.compile(bytes));
    expect((free.exports['grow'] as (n: number) => number)(10)).toBe(1);
  });

  it('keeps a smaller declared maximum and never goes below the initial size', async () => {
    const small = await assemble('(module (memory 1 2))');
    expect(capModuleMemory(small, 16)).toMatchObject({ changed: false, memories: [{ min: 1n, max: 2n }] });
    expect(capModuleMemory(small, 16).bytes).toBe(small);
    const big = await assemble('(module (memory 8))');
    const capped = capModuleMemory(big, 2);
    await expect(wasm.compile(capped.bytes)).resolves.toBeDefined();
    expect(capModuleMemory(capped.bytes, 2)).toMatchObject({
      changed: false,
      memories: [{ min: 8n, max: 8n }],
    });
  });

  it('leaves imported memories and modules without memory alone', async () => {
    const imported = await assemble('(module (import "env" "memory" (memory 1)))');
    expect(capModuleMemory(imported, 2)).toMatchObject({ changed: false, memories: [] });
    const none = await assemble('(module (func (export "f") (result i32) (i32.const 1)))');
    expect(capModuleMemory(none, 2).bytes).toBe(none);
  });

  it('rewrites multi-byte limits and keeps every other section intact', async () => {
    const bytes = await assemble(`(module
      (memory (export "m") 300)
      (data (i32.const 0) "hello")
      (func (export "peek") (result i32) (i32.load8_u (i32.const 1))))`);
    const capped = capModuleMemory(bytes, 1000);
    const { exports } = await wasm.instantiate(await wasm.compile(capped.bytes));
    expect((exports['peek'] as () => number)()).toBe('e'.charCodeAt(0));
    expect(capModuleMemory(capped.bytes, 5000).memories).toEqual([
      { min: 300n, max: 1000n, shared: false, memory64: false },
    ]);
  });

  it('refuses what is not a core module', () => {
    expect(() => capModuleMemory(new Uint8Array([1, 2, 3]), 1)).toThrow('not a core WebAssembly module');
    expect(pagesForBytes(32 * 1024 * 1024)).toBe(512);
  });
});
