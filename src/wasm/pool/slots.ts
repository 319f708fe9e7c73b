/**
 * The data half of the atomics channel: one slot per pipelined request and one per result, in a
 * SharedArrayBuffer, so a call crosses threads without postMessage (no structured clone, no
 * event-loop signal). Values are CBOR (cbor-x: fast, and exact for BigInt, byte arrays, undefined
 * and nested data). A value too large for its slot is sent on the MessagePort instead and its
 * slot says so; the receiver then takes the next port message, so order is kept.
 *
 * Slot n serves request/result n modulo the slot count. The pool never has more requests in
 * flight on a worker than slots, so a slot is only rewritten after its previous value was read.
 */
import { Encoder } from 'cbor-x';

/** Default payload room per slot; bigger values go through the port. */
export const SLOT_BYTES = 16 * 1024;
const IN_PORT = 0xffff_ffff;
const HEADER = 4;

const codec = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  copyBuffers: true,
});

export function encodeValue(value: unknown): Uint8Array {
  return codec.encode(value);
}

export function decodeValue(bytes: Uint8Array): unknown {
  return codec.decode(bytes);
}

export class SlotArea {
  private readonly bytes: Uint8Array;
  private readonly lengths: Uint32Array;

  /** `offset` and `slotBytes` must be multiples of 4. */
  constructor(
    buffer: SharedArrayBuffer,
    private readonly offset: number,
    readonly count: number,
    private readonly slotBytes: number,
  ) {
    this.bytes = new Uint8Array(buffer, offset, count * slotBytes);
    this.lengths = new Uint32Array(buffer, offset, (count * slotBytes) / 4);
  }

  static byteLength(count: number, slotBytes: number): number {
    return count * slotBytes;
  }

  /** Writes `value` into the slot of `seq`; false when it does not fit (the caller posts it). */
  write(seq: number, value: unknown): boolean {
    const slot = (seq - 1) % this.count;
    const at = slot * this.slotBytes;
    let encoded: Uint8Array;
    try {
      encoded = codec.encode(value);
    } catch {
      // Not CBOR-encodable (a function, a symbol...): structured clone decides on the port.
      encoded = new Uint8Array(this.slotBytes);
    }
    if (encoded.length > this.slotBytes - HEADER) {
      this.lengths[at / 4] = IN_PORT;
      return false;
    }
    this.bytes.set(encoded, at + HEADER);
    this.lengths[at / 4] = encoded.length;
    return true;
  }

  markInPort(seq: number): void {
    this.lengths[(((seq - 1) % this.count) * this.slotBytes) / 4] = IN_PORT;
  }

  /** The value in the slot of `seq`, or `inPort` when it was sent on the port. */
  read(seq: number): { inPort: true } | { inPort: false; value: unknown } {
    const slot = (seq - 1) % this.count;
    const at = slot * this.slotBytes;
    const length = this.lengths[at / 4]!;
    if (length === IN_PORT) return { inPort: true };
    // A copy: decoded byte strings must not alias a slot that will be overwritten.
    return { inPort: false, value: codec.decode(this.bytes.slice(at + HEADER, at + HEADER + length)) };
  }

  get end(): number {
    return this.offset + this.count * this.slotBytes;
  }
}
