/** Ring slots allocated up front; the ring doubles from here up to twice `maxEntries`. */
const INITIAL_SLOTS = 1024;

/**
 * A map that remembers entries for `ttlMs` and at most `maxEntries` of them, forgetting the oldest
 * first, in O(1) per operation and without allocating per entry.
 *
 * The order of arrival is kept in a ring of parallel arrays beside the map (key, value and write
 * time per slot; the map holds a key's slot), not in a Map alone nor in objects per entry:
 * - evicting from the front of a Map walks V8's deleted-entry holes on every new iterator;
 * - an object per entry and per queue place (with their boxed timestamps) outlived the young
 *   generation by design, so every write was copied by the scavenger and promoted.
 * What each cost a message: docs/performance.md.
 *
 * A key written again takes a new slot at the back; its earlier slot is skipped when it comes up.
 * The ring holds at most twice `maxEntries` slots, so rewrites cannot grow it without bound.
 */
export class ExpiringMap<K, V> {
  /** Key → its current slot. */
  private readonly index = new Map<K, number>();
  private keys: (K | undefined)[];
  private values: (V | undefined)[];
  private at: Float64Array;
  private head = 0;
  private count = 0;
  private readonly maxSlots: number;

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.maxSlots = Math.max(2, 2 * maxEntries);
    const n = Math.min(INITIAL_SLOTS, this.maxSlots);
    this.keys = new Array<K | undefined>(n).fill(undefined);
    this.values = new Array<V | undefined>(n).fill(undefined);
    this.at = new Float64Array(n);
  }

  get size(): number {
    return this.index.size;
  }

  get(key: K): V | undefined {
    const slot = this.index.get(key);
    if (slot === undefined) return undefined;
    if (this.now() - this.at[slot]! >= this.ttlMs) {
      this.index.delete(key);
      return undefined;
    }
    return this.values[slot];
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /** Stores `value` unless `key` holds a live entry: answers whether it did (one lookup, not two). */
  addIfAbsent(key: K, value: V): boolean {
    const slot = this.index.get(key);
    const now = this.now();
    if (slot !== undefined && now - this.at[slot]! < this.ttlMs) return false;
    if (slot !== undefined) this.index.delete(key);
    this.put(key, value, now);
    return true;
  }

  /** Stores `value` as new: it lives `ttlMs` from now, and is the last to be evicted. */
  set(key: K, value: V): void {
    // A rewritten key gives up its place first: its old slot turns stale and is skipped.
    this.index.delete(key);
    this.put(key, value, this.now());
  }

  /** Writes an absent key at the back of the ring. */
  private put(key: K, value: V, now: number): void {
    this.evict(now);
    if (this.count === this.keys.length) this.grow();
    const slot = (this.head + this.count) % this.keys.length;
    this.keys[slot] = key;
    this.values[slot] = value;
    this.at[slot] = now;
    this.count++;
    this.index.set(key, slot);
  }

  delete(key: K): boolean {
    return this.index.delete(key);
  }

  clear(): void {
    this.index.clear();
    this.keys.fill(undefined);
    this.values.fill(undefined);
    this.head = 0;
    this.count = 0;
  }

  /** Makes room for one more entry: drops expired and surplus entries, and stale slots, from the front. */
  private evict(now: number): void {
    while (this.count > 0) {
      const slot = this.head;
      const key = this.keys[slot] as K;
      const live = this.index.get(key) === slot;
      const over = this.count >= this.maxSlots || (live && this.index.size >= this.maxEntries);
      if (live && !over && now - this.at[slot]! < this.ttlMs) break;
      if (live) this.index.delete(key);
      this.keys[slot] = undefined;
      this.values[slot] = undefined;
      this.head = (slot + 1) % this.keys.length;
      this.count--;
    }
  }

  /** Doubles the ring (up to its bound), laying the slots out again from the front. */
  private grow(): void {
    const n = this.keys.length;
    const size = Math.min(n * 2, this.maxSlots);
    const keys = new Array<K | undefined>(size).fill(undefined);
    const values = new Array<V | undefined>(size).fill(undefined);
    const at = new Float64Array(size);
    for (let i = 0; i < this.count; i++) {
      const from = (this.head + i) % n;
      const key = this.keys[from] as K;
      keys[i] = key;
      values[i] = this.values[from];
      at[i] = this.at[from]!;
      // Stale slots move too (they keep the count right) but the index keeps pointing at live ones.
      if (this.index.get(key) === from) this.index.set(key, i);
    }
    this.keys = keys;
    this.values = values;
    this.at = at;
    this.head = 0;
  }
}
