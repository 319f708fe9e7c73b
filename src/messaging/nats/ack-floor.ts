/**
 * A partition consumer's acknowledgement floor under `AckPolicy.All`, the way a Kafka consumer
 * commits offsets: messages finish out of order (sessions run concurrently), but an ack of stream
 * sequence N acknowledges everything up to N, so the owner may only ack the highest sequence below
 * which every delivered message has finished. A message still running or retrying holds the floor
 * back; its finished successors wait (kept alive, see `held`) until it finishes too.
 *
 * Entries are kept per stream sequence in ascending order. A redelivery of a sequence still held
 * replaces the copy (finishing the older copy then no longer counts: the newer one is what the
 * server waits for).
 */
export class AckFloor<T> {
  private readonly entries = new Map<number, Entry<T>>();
  /** Held sequences, ascending from `head`. */
  private seqs: number[] = [];
  private head = 0;

  /** Messages taken and not yet passed by the floor (finished or not). */
  get size(): number {
    return this.entries.size;
  }

  /** Tracks a delivered message from now on (`at`: when it was taken, for `held`). */
  take(seq: number, item: T, at = 0): void {
    const e = this.entries.get(seq);
    if (e) {
      e.item = item;
      e.done = false;
      e.at = at;
      return;
    }
    this.entries.set(seq, { item, done: false, at });
    const last = this.seqs.length > this.head ? this.seqs[this.seqs.length - 1]! : -1;
    if (seq > last) {
      this.seqs.push(seq);
      return;
    }
    // Out of order (a redelivery of a sequence the floor already passed, e.g. a lost ack).
    let lo = this.head;
    let hi = this.seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqs[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    this.seqs.splice(lo, 0, seq);
  }

  /** `item` (the copy taken for `seq`) has finished: handled, or dead-lettered. */
  finish(seq: number, item: T): void {
    const e = this.entries.get(seq);
    if (e && e.item === item) e.done = true;
  }

  /**
   * Moves the floor past every finished message at its head and returns the last one passed (the
   * one to ack: an AckAll ack of it acknowledges the others), or undefined when it did not move.
   */
  advance(): T | undefined {
    let passed: T | undefined;
    while (this.head < this.seqs.length) {
      const seq = this.seqs[this.head]!;
      const e = this.entries.get(seq)!;
      if (!e.done) break;
      passed = e.item;
      this.entries.delete(seq);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(this.head);
      this.head = 0;
    }
    return passed;
  }

  /** Messages held (finished or not) taken before `before`: those whose ack_wait must be extended. */
  *held(before = Infinity): Iterable<T> {
    for (const e of this.entries.values()) if (e.at < before) yield e.item;
  }

  /** Forgets everything (the consumer was re-created: its messages come again). */
  clear(): void {
    this.entries.clear();
    this.seqs = [];
    this.head = 0;
  }
}

interface Entry<T> {
  item: T;
  done: boolean;
  at: number;
}
