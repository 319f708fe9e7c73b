/**
 * Gives every memory a core module defines a maximum size, by rewriting the limits in its memory
 * section before the module is compiled. `memory.grow` past the maximum then fails inside the
 * guest (it gets -1), so one call can never take more than the cap, even before the pool's
 * after-call check sees it. Imported memories are left alone: they are some other module's
 * definition, capped there. Memory64 limits are rewritten the same way (u64 LEB128).
 */

export const WASM_PAGE_BYTES = 65_536;

export interface MemoryLimits {
  /** Initial size, in pages. */
  min: bigint;
  max?: bigint;
  shared: boolean;
  memory64: boolean;
}

export interface CapResult {
  bytes: Uint8Array;
  /** The defined memories, as they were before the cap. */
  memories: MemoryLimits[];
  /** Whether any limit changed. */
  changed: boolean;
}

const MEMORY_SECTION = 5;

class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  byte(): number {
    if (this.pos >= this.bytes.length) throw new Error('unexpected end of module');
    return this.bytes[this.pos++]!;
  }

  leb(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new Error('LEB128 value too long');
    }
  }
}

function leb(value: bigint): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return out;
}

/**
 * The module with every defined memory's maximum set to at most `maxPages` (never below its
 * initial size: a module that needs more than the cap to start is caught by the after-call check
 * with a clear message instead of failing validation).
 */
export function capModuleMemory(module: Uint8Array, maxPages: number): CapResult {
  if (
    module.length < 8 ||
    module[0] !== 0x00 ||
    module[1] !== 0x61 ||
    module[2] !== 0x73 ||
    module[3] !== 0x6d
  ) {
    throw new Error('not a core WebAssembly module');
  }
  const cap = BigInt(Math.max(0, Math.floor(maxPages)));
  const r = new Reader(module);
  r.pos = 8;
  const parts: Uint8Array[] = [module.subarray(0, 8)];
  const memories: MemoryLimits[] = [];
  let changed = false;
  while (r.pos < module.length) {
    const start = r.pos;
    const id = r.byte();
    const size = Number(r.leb());
    const bodyStart = r.pos;
    const end = bodyStart + size;
    if (end > module.length) throw new Error('section runs past the end of the module');
    if (id !== MEMORY_SECTION) {
      parts.push(module.subarray(start, end));
      r.pos = end;
      continue;
    }
    const count = Number(r.leb());
    const body: number[] = leb(BigInt(count));
    for (let i = 0; i < count; i++) {
      const flags = r.byte();
      const limits: MemoryLimits = {
        min: r.leb(),
        shared: (flags & 0x02) !== 0,
        memory64: (flags & 0x04) !== 0,
      };
      if (flags & 0x01) limits.max = r.leb();
      memories.push(limits);
      let max = limits.max === undefined || limits.max > cap ? cap : limits.max;
      if (max < limits.min) max = limits.min;
      if (max !== limits.max) changed = true;
      body.push(flags | 0x01, ...leb(limits.min), ...leb(max));
    }
    if (r.pos !== end) throw new Error('memory section has trailing bytes');
    parts.push(Uint8Array.of(MEMORY_SECTION, ...leb(BigInt(body.length)), ...body));
  }
  if (!changed) return { bytes: module, memories, changed };
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { bytes: out, memories, changed };
}

export function pagesForBytes(bytes: number): number {
  return Math.floor(bytes / WASM_PAGE_BYTES);
}
