import type { ProcessedMessage } from '../core/session-store.js';

/** How long processed message ids are remembered per session (redeliveries inside it are not re-run). */
export const IDEMPOTENCY_WINDOW_S = 24 * 3600;
/**
 * How long a processed message keeps its replies in the record: a redelivery inside it (the
 * replica died between commit and publish, or the message was replayed by a new partition owner)
 * re-publishes them instead of running the flow again. Longer than any redelivery can come
 * (ack wait × deliveries: the NATS bus refuses settings that pass it).
 */
export const REPLAY_WINDOW_S = 15 * 60;
/** Most recent processed ids kept per session record (besides those still holding replies). */
export const PROCESSED_CAP = 64;
/** Ids a record may hold before it is pruned back to the cap: pruning filters, so not every message. */
const PROCESSED_PRUNE_AT = PROCESSED_CAP + 16;

/**
 * A session's processed message ids, oldest first. A list rather than a map keyed by id: every
 * message makes a new one (records are never changed in place, and the memory store shares the
 * committed one with every load), and copying a list of references is a fraction of copying a map
 * of 64 ids, which had fallen into V8's slow dictionary mode.
 */
export type ProcessedWindow = readonly ProcessedMessage[];

/**
 * An index of a window's ids, built at its first lookup and then handed on, kept current, to the
 * window made from it (withProcessed, withoutEgress): the one the session's next message looks in,
 * since the stores hand back a committed list by identity. The message whose id is new, nearly
 * every one, would otherwise compare it with every entry of a full window (64–80), each through an
 * entry object and a string long out of cache: about 5 µs a message (docs/performance.md). A
 * window looked in again after its index moved on (a stale load, a refused commit) builds its own.
 * Held weakly: an index goes with its window.
 */
const indexes = new WeakMap<ProcessedWindow, Map<string, ProcessedMessage>>();
/** Below this many ids a scan costs less than building an index. */
const INDEX_FROM = 16;

/** The entry of `id` (the newest, should an id be held twice). */
export function findProcessed(window: ProcessedWindow | undefined, id: string): ProcessedMessage | undefined {
  if (!window) return undefined;
  if (window.length < INDEX_FROM) {
    for (let i = window.length - 1; i >= 0; i--) if (window[i]!.id === id) return window[i];
    return undefined;
  }
  let index = indexes.get(window);
  if (!index) {
    index = new Map();
    for (const p of window) index.set(p.id, p);
    indexes.set(window, index);
  }
  return index.get(id);
}

/** Moves `from`'s index (if it has one) to `to`; the caller then makes it match `to`. */
function handOn(
  from: ProcessedWindow | undefined,
  to: ProcessedWindow,
): Map<string, ProcessedMessage> | undefined {
  const index = from && indexes.get(from);
  if (!index) return undefined;
  indexes.delete(from);
  indexes.set(to, index);
  return index;
}

/**
 * A new window with `entry` added. Replies older than the replay window are dropped from their
 * entries (the id stays); past the prune mark, expired and surplus ids go.
 */
export function withProcessed(
  window: ProcessedWindow | undefined,
  entry: ProcessedMessage,
  now: number,
): ProcessedMessage[] {
  // Entries are frozen from birth: the memory store shares committed lists with every load.
  Object.freeze(entry);
  const list = window ? [...window, entry] : [entry];
  const replayFrom = now - REPLAY_WINDOW_S * 1000;
  const replaced: [ProcessedMessage, ProcessedMessage][] = [];
  for (let i = 0; i < list.length - 1; i++) {
    const p = list[i]!;
    if (p.egress && p.at < replayFrom) replaced.push([p, (list[i] = Object.freeze({ id: p.id, at: p.at }))]);
  }
  const dropped: ProcessedMessage[] = [];
  const out = list.length > PROCESSED_PRUNE_AT ? prune(list, now, dropped) : list;
  const index = handOn(window, out);
  if (index) {
    replaceIn(index, replaced);
    for (const p of dropped) if (index.get(p.id) === p) index.delete(p.id);
    index.set(entry.id, entry);
  }
  return out;
}

/** Points an index at the entries that replaced the ones it held. */
function replaceIn(
  index: Map<string, ProcessedMessage>,
  replaced: [ProcessedMessage, ProcessedMessage][],
): void {
  for (const [was, is] of replaced) if (index.get(was.id) === was) index.set(was.id, is);
}

/**
 * A window in which the entries of `ids` no longer hold their replies (their publish is known to
 * have landed), or the same window when none of them does.
 */
export function withoutEgress(window: ProcessedWindow, ids: readonly string[]): ProcessedWindow {
  let out: ProcessedMessage[] | undefined;
  const replaced: [ProcessedMessage, ProcessedMessage][] = [];
  for (const id of ids) {
    // An id is in a window once (a repeat is refused, not added), and the ids whose publish landed
    // are the session's latest messages: looked up from the newest end, not by a walk of all.
    for (let i = window.length - 1; i >= 0; i--) {
      const p = window[i]!;
      if (p.id !== id) continue;
      if (p.egress) replaced.push([p, ((out ??= [...window])[i] = Object.freeze({ id: p.id, at: p.at }))]);
      break;
    }
  }
  if (!out) return window;
  const index = handOn(window, out);
  if (index) replaceIn(index, replaced);
  return out;
}

/**
 * Keeps entries holding replies (inside the replay window), and the newest PROCESSED_CAP others
 * inside the idempotency window; the others are added to `dropped`.
 */
function prune(list: ProcessedMessage[], now: number, dropped: ProcessedMessage[]): ProcessedMessage[] {
  const keep = new Array<boolean>(list.length).fill(false);
  let kept = 0;
  for (let i = list.length - 1; i >= 0; i--) {
    const p = list[i]!;
    if (p.egress) keep[i] = true;
    else if (kept < PROCESSED_CAP && now - p.at < IDEMPOTENCY_WINDOW_S * 1000) {
      keep[i] = true;
      kept++;
    }
  }
  for (let i = 0; i < list.length; i++) if (!keep[i]) dropped.push(list[i]!);
  return list.filter((_, i) => keep[i]);
}

/**
 * Records written before the window became a list held a map `{ [id]: { at, egress? } }`: read as
 * the same list, in time order, so their ids still stop redeliveries.
 */
export function normalizeProcessed(stored: unknown): ProcessedMessage[] | undefined {
  if (stored === undefined || stored === null) return undefined;
  if (Array.isArray(stored)) return stored as ProcessedMessage[];
  if (typeof stored !== 'object') return undefined;
  return Object.entries(stored as Record<string, Omit<ProcessedMessage, 'id'>>)
    .map(([id, p]) => ({ id, ...p }))
    .sort((a, b) => a.at - b.at);
}
