import { fnv1a } from '../../common/hash.js';
import {
  awaitedEgressToken,
  SUBJECT_TOKENS,
  subjectDirection,
  subjectPattern,
  type SubjectDirection,
} from '../../core/subjects.js';
/**
 * Logical subjects (what the app publishes and subscribes to: src/core/subjects.ts) versus wire
 * subjects (what NATS carries). On the wire:
 *
 *   [{subjectPrefix}.]greentic.messaging.ingress.{env}.{tenant}.{team}.{channel}.p{N}
 *   [{subjectPrefix}.]greentic.messaging.egress.{env}.{tenant}.{team}.{channel}.p{N}.{waiter}
 *   [{subjectPrefix}.]greentic.messaging.dlq.{env}.{tenant}.{team}.{channel}
 *
 * `p{N}` is the partition of the message's ordering key (its `sessionKey`, else its subject).
 * `{waiter}` (awaitedEgressToken) names the replica whose caller waits for these replies, `_` if
 * none: that replica reads its egress with a core subscription, so one publish both lands in the
 * stream and answers the caller. Always present, so one filter (`….p{N}.*`) covers a partition.
 * Each partition has one durable consumer with `max_ack_pending: 1`, so the messages of one
 * session are handed out one at a time in publish order, whichever replica pulls them. The
 * logical subject is always a prefix of the wire subject, so `nats sub 'greentic.messaging.>'`
 * still shows everything; the prefix lets several deployments (or test runs) share one account.
 */

/** The directions a stream captures: every messaging direction has one. */
export type StreamDirection = SubjectDirection;

const LOGICAL_TOKENS = SUBJECT_TOKENS;

const TOKEN = /^[A-Za-z0-9_-]+$/;

export class SubjectMapper {
  private readonly prefixTokens: string[];

  constructor(
    subjectPrefix: string,
    readonly partitions: number,
  ) {
    this.prefixTokens = subjectPrefix === '' ? [] : subjectPrefix.split('.');
    for (const t of this.prefixTokens) {
      if (!TOKEN.test(t)) throw new Error(`subject prefix '${subjectPrefix}' has an invalid token '${t}'`);
    }
    if (!Number.isInteger(partitions) || partitions < 1)
      throw new Error(`partitions must be a positive integer, got ${partitions}`);
  }

  /** The stream direction a logical subject or pattern belongs to, if any. */
  direction(logical: string): StreamDirection | undefined {
    return subjectDirection(logical);
  }

  /** Ingress and egress keep per-session order through partitions; the dead-letter stream does not. */
  partitioned(dir: StreamDirection | undefined): boolean {
    return dir === 'ingress' || dir === 'egress';
  }

  /** Subjects a stream captures (wire form). */
  streamSubject(dir: StreamDirection): string {
    return this.wire(subjectPattern(dir));
  }

  partitionOf(orderingKey: string): number {
    return partitionFor(orderingKey, this.partitions);
  }

  /**
   * Wire subject for publishing a logical subject; `replyTo`, for egress, the reply subject of the
   * replica where a caller waits.
   */
  toWire(logical: string, orderingKey: string, replyTo?: string): string {
    const dir = this.direction(logical);
    if (this.partitioned(dir) && logical.split('.').length === LOGICAL_TOKENS) {
      const p = `${logical}.p${this.partitionOf(orderingKey)}`;
      return this.wire(dir === 'egress' ? `${p}.${awaitedEgressToken(replyTo)}` : p);
    }
    return this.wire(logical);
  }

  /** Logical subject of a delivered wire subject (prefix, partition and waiter removed). */
  fromWire(wire: string): string {
    const t = wire.split('.');
    const rest = t.slice(this.prefixTokens.length);
    const dir = this.direction(rest.join('.'));
    if (this.partitioned(dir)) {
      const tail = dir === 'egress' ? 2 : 1;
      if (rest.length === LOGICAL_TOKENS + tail && /^p\d+$/.test(rest[LOGICAL_TOKENS]!))
        rest.length = LOGICAL_TOKENS;
    }
    return rest.join('.');
  }

  /**
   * Consumer filter for one partition of a logical pattern: a trailing `>` becomes `*` tokens up
   * to the logical length (a `>` would also swallow the partition token), then `.p{N}` (and
   * `.*`, the waiter, on egress).
   */
  partitionFilter(pattern: string, partition: number): string {
    const filter = `${expandToLogical(pattern)}.p${partition}`;
    return this.wire(this.direction(pattern) === 'egress' ? `${filter}.*` : filter);
  }

  /** Where a replica's waiting callers' replies arrive on NATS: the egress publishes naming it. */
  awaitedEgressPattern(replyTo: string): string {
    const anyChannel = subjectPattern('egress', { env: '*', tenant: '*', team: '*', channel: '*' });
    return this.wire(`${anyChannel}.*.${awaitedEgressToken(replyTo)}`);
  }

  /** Filter for messages that arrived without a partition token (published straight to NATS). */
  unpartitionedFilter(pattern: string): string {
    return this.wire(expandToLogical(pattern));
  }

  /** Wire pattern for a plain (core NATS) subscription: matches partitioned and unpartitioned subjects. */
  corePattern(pattern: string): string {
    const dir = this.direction(pattern);
    const t = pattern.split('.');
    if (this.partitioned(dir) && t[t.length - 1] !== '>') {
      if (t.length !== LOGICAL_TOKENS)
        throw new Error(`pattern '${pattern}' must have ${LOGICAL_TOKENS} tokens or end with '>'`);
      return this.wire(dir === 'egress' ? `${pattern}.*.*` : `${pattern}.*`);
    }
    return this.wire(pattern);
  }

  /** Stream filter for a non-partitioned direction (dead letters). */
  plainFilter(pattern: string): string {
    return this.wire(pattern);
  }

  private wire(subject: string): string {
    return this.prefixTokens.length === 0 ? subject : `${this.prefixTokens.join('.')}.${subject}`;
  }
}

function expandToLogical(pattern: string): string {
  const t = pattern.split('.');
  if (t.slice(0, 3).some((x) => x === '*' || x === '>')) {
    throw new Error(
      `pattern '${pattern}' must name its direction (greentic.messaging.{ingress|egress}...) to be consumed from a stream`,
    );
  }
  if (t[t.length - 1] === '>') {
    t.pop();
    while (t.length < LOGICAL_TOKENS) t.push('*');
  }
  if (t.length !== LOGICAL_TOKENS || t.includes('>')) {
    throw new Error(
      `pattern '${pattern}' does not fit greentic.messaging.{dir}.{env}.{tenant}.{team}.{channel}`,
    );
  }
  return t.join('.');
}

/**
 * Partition of an ordering key: FNV-1a with a murmur3 finalizer (plain FNV-1a leaves the low bits
 * of similar keys, like `…:user1`, `…:user2`, poorly mixed, so `mod 16` would use half the
 * partitions). Stable across processes and versions, which partitioning needs.
 */
export function partitionFor(key: string, partitions: number): number {
  let h = fnv1a(key);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % partitions;
}

/** A durable consumer name from free text: NATS refuses `.`, `*`, `>`, whitespace and path separators. */
export function durableName(...parts: string[]): string {
  return parts.map((p) => p.replace(/[^A-Za-z0-9_-]/g, '_')).join('_');
}
