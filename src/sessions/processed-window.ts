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

/** The entry of `id`; the newest ones are looked at first (a redelivery is usually recent). */
export function findProcessed(window: ProcessedWindow | undefined, id: string): ProcessedMessage | undefined {
  if (!window) return undefined;
  for (let i = window.length - 1; i >= 0; i--) if (window[i]!.id === id) return window[i];
  return undefined;
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
  for (let i = 0; i < list.length - 1; i++) {
    const p = list[i]!;
    if (p.egress && p.at < replayFrom) list[i] = Object.freeze({ id: p.id, at: p.at });
  }
  return list.length > PROCESSED_PRUNE_AT ? prune(list, now) : list;
}

/**
 * A window in which the entries of `ids` no longer hold their replies (their publish is known to
 * have landed), or the same window when none of them does.
 */
export function withoutEgress(window: ProcessedWindow, ids: readonly string[]): ProcessedWindow {
  let out: ProcessedMessage[] | undefined;
  for (const id of ids) {
    // An id is in a window once (a repeat is refused, not added), and the ids whose publish landed
    // are the session's latest messages: looked up from the newest end, not by a walk of all.
    for (let i = window.length - 1; i >= 0; i--) {
      const p = window[i]!;
      if (p.id !== id) continue;
      if (p.egress) (out ??= [...window])[i] = Object.freeze({ id: p.id, at: p.at });
      break;
    }
  }
  return out ?? window;
}

/** Keeps entries holding replies (inside the replay window), and the newest PROCESSED_CAP others inside the idempotency window. */
function prune(list: ProcessedMessage[], now: number): ProcessedMessage[] {
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
