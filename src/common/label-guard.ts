import type { Attributes } from '@opentelemetry/api';

/**
 * Caps the distinct values one label may take, so a bug or a hostile input can never blow up the
 * series count: past the cap, new values are reported as `other`. Every label here comes from
 * the bundle or a pack (tenant, channel, flow, node, component) or a fixed set (outcome); none is
 * a user, session or message id.
 */
export class LabelGuard {
  private readonly seen = new Map<string, Set<string>>();

  constructor(private readonly maxValuesPerLabel = 500) {}

  /** The label set to record: `attrs` with each value past its label's cap replaced by `other`. */
  bound(attrs: Record<string, string>): Attributes {
    const out: Record<string, string> = {};
    for (const k in attrs) {
      const v = attrs[k]!;
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
