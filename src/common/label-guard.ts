import type { Attributes } from '@opentelemetry/api';
import { branch, type Trie } from './trie.js';

const MAX_MEMO = 10_000;

const LEAF = Symbol('labels');

/**
 * Caps the distinct values one label may take, so a bug or a hostile input can never blow up the
 * series count: past the cap, new values are reported as `other`. Every label here comes from
 * the bundle or a pack (tenant, channel, flow, node, component) or a fixed set (outcome); none is
 * a user, session or message id.
 */
export class LabelGuard {
  private readonly seen = new Map<string, Set<string>>();
  /**
   * Label sets already checked: the hot path records the same few over and over. A trie of maps,
   * name then value at each level, so a lookup hashes the label strings themselves (V8 keeps a
   * string's hash) instead of building a key string for every record.
   */
  private memo: Trie = new Map();
  private memoized = 0;

  constructor(private readonly maxValuesPerLabel = 500) {}

  /**
   * The bound label set for `key` (and `sub`) under `owner` (a channel, tenant or store object),
   * made with `make` the first time: hot paths that know their labels' owner skip building the set
   * and walking the trie on every record.
   */
  boundFor(owner: object, key: string, make: () => Record<string, string>, sub = ''): Attributes {
    let byKey = this.owned.get(owner);
    if (!byKey) this.owned.set(owner, (byKey = new Map()));
    let bySub = byKey.get(key);
    if (!bySub) byKey.set(key, (bySub = new Map()));
    let attrs = bySub.get(sub);
    if (!attrs) bySub.set(sub, (attrs = this.bound(make())));
    return attrs;
  }

  private readonly owned = new WeakMap<object, Map<string, Map<string, Attributes>>>();

  bound(attrs: Record<string, string>): Attributes {
    let node = this.memo;
    for (const k in attrs) node = branch(branch(node, k), attrs[k]!);
    const hit = node.get(LEAF);
    if (hit) return hit as Attributes;
    const out = this.check(attrs);
    if (this.memoized >= MAX_MEMO) {
      this.memo = new Map();
      this.memoized = 0;
      return this.bound(attrs);
    }
    node.set(LEAF, out);
    this.memoized++;
    return out;
  }

  private check(attrs: Record<string, string>): Attributes {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(attrs)) {
      let s = this.seen.get(k);
      if (!s) this.seen.set(k, (s = new Set()));
      if (s.has(v)) out[k] = v;
      else if (s.size < this.maxValuesPerLabel) {
        s.add(v);
        out[k] = v;
      } else out[k] = 'other';
    }
    return out;
  }
}
