import { Injectable } from '@nestjs/common';
import type { Attributes, Counter, Histogram, ObservableGauge } from '@opentelemetry/api';
import { MetricService } from 'nestjs-otel';
import { branch, type Trie } from '../common/trie.js';

/** Milliseconds: component calls take microseconds to seconds, flows up to the deadline. */
const MS_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

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
   * The bound label set for `key` (and `sub`) under `owner` (a frozen channel, tenant or store),
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
    const out = Object.freeze(this.check(attrs));
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

/** Every instrument the runner records, in one place, so names and labels stay consistent. */
@Injectable()
export class RunnerMetrics {
  readonly labels = new LabelGuard();
  readonly messagesIn: Counter;
  readonly messagesOut: Counter;
  readonly nodeDuration: Histogram;
  readonly componentDuration: Histogram;
  readonly componentTimeouts: Counter;
  readonly componentMemoryKills: Counter;
  readonly sessionStoreDuration: Histogram;
  readonly busLag: Histogram;
  readonly packReloads: Counter;
  readonly metrics: MetricService;

  constructor(metrics: MetricService) {
    this.metrics = metrics;
    const ms = { unit: 'ms', advice: { explicitBucketBoundaries: MS_BUCKETS } };
    this.messagesIn = metrics.getCounter('greentic_messages_in', {
      description:
        'Inbound messages processed, by tenant, channel and outcome (completed, parked, failed, duplicate, error)',
    });
    this.messagesOut = metrics.getCounter('greentic_messages_out', {
      description: 'Reply deliveries to channels, by tenant, channel and outcome (delivered, failed)',
    });
    this.nodeDuration = metrics.getHistogram('greentic_node_duration_ms', {
      ...ms,
      description: 'Time to run one flow node',
    });
    this.componentDuration = metrics.getHistogram('greentic_component_duration_ms', {
      ...ms,
      description: 'Time of one component call',
    });
    this.componentTimeouts = metrics.getCounter('greentic_component_timeouts', {
      description: 'Component calls stopped at their deadline',
    });
    this.componentMemoryKills = metrics.getCounter('greentic_component_memory_kills', {
      description: 'Component instances discarded for exceeding their memory cap',
    });
    this.sessionStoreDuration = metrics.getHistogram('greentic_session_store_duration_ms', {
      ...ms,
      description: 'Session store operation latency, by store and operation',
    });
    this.busLag = metrics.getHistogram('greentic_bus_lag_ms', {
      ...ms,
      description: 'Time from publish to the start of handling, by direction',
    });
    this.packReloads = metrics.getCounter('greentic_pack_reloads', {
      description: 'Pack reloads, by tenant, pack and outcome',
    });
  }

  gauge(name: string, description: string): ObservableGauge {
    return this.metrics.getObservableGauge(name, { description });
  }
}
