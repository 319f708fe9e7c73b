import { fnv1a } from '../common/hash.js';
import type { ProcessedMessage } from '../core/session-store.js';

/** How long processed message ids are remembered per session (redeliveries inside it are not re-run). */
export const IDEMPOTENCY_WINDOW_S = 24 * 3600;
/** Most recent processed ids kept per session record; unconfirmed replies are always kept. */
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
 * The ids' hashes, in list order, on windows this module made: a lookup scans one small typed
 * array instead of touching every entry and its id string, which live scattered in the old
 * generation (a miss cost ~8 µs a message, a tenth of its CPU, at 64 ids). A symbol key:
 * JSON, spreads and structured clones never see it, so stored records are unchanged.
 */
const HASHES = Symbol('processed.hashes');

type Hashed = ProcessedMessage[] & { [HASHES]?: Int32Array };
const NO_HASHES = new Int32Array(0);

/** An id's hash as the Int32Array holds it; a collision only costs a string compare. */
function idHash(id: string): number {
  return fnv1a(id) | 0;
}

function hashesOf(window: ProcessedWindow): Int32Array | undefined {
  return (window as Hashed)[HASHES];
}

function withHashes(list: ProcessedMessage[], hashes: Int32Array): ProcessedMessage[] {
  (list as Hashed)[HASHES] = hashes;
  return list;
}

/** The entry of `id`; the newest ones are looked at first (a redelivery is usually recent). */
export function findProcessed(window: ProcessedWindow | undefined, id: string): ProcessedMessage | undefined {
  if (!window) return undefined;
  const hashes = hashesOf(window);
  if (hashes) {
    const h = idHash(id);
    for (let i = hashes.length - 1; i >= 0; i--)
      if (hashes[i] === h && window[i]!.id === id) return window[i];
    return undefined;
  }
  // A window read from a store (no hashes yet): the plain scan.
  for (let i = window.length - 1; i >= 0; i--) if (window[i]!.id === id) return window[i];
  return undefined;
}

/** A new window with `entry` added; past the prune mark, expired and surplus confirmed ids go. */
export function withProcessed(
  window: ProcessedWindow | undefined,
  entry: ProcessedMessage,
  now: number,
): ProcessedMessage[] {
  // Entries are frozen from birth: the memory store shares committed lists with every load.
  Object.freeze(entry);
  const list = window ? [...window, entry] : [entry];
  const n = list.length;
  const before = window && window.length > 0 ? hashesOf(window) : NO_HASHES;
  // A window read from a store has none: it is on its way back to the store (JSON), where
  // hashes would not survive, so none are made for it.
  if (!before || before.length !== n - 1) return n > PROCESSED_PRUNE_AT ? prune(list, now) : list;
  const hashes = new Int32Array(n);
  hashes.set(before);
  hashes[n - 1] = idHash(entry.id);
  return n > PROCESSED_PRUNE_AT ? prune(list, now, hashes) : withHashes(list, hashes);
}

/** A new window in which `id` no longer holds its replies (their publish is confirmed). */
export function withoutEgress(window: ProcessedWindow, id: string): ProcessedMessage[] {
  const list = window.map((p) => (p.id === id && p.egress ? Object.freeze({ id: p.id, at: p.at }) : p));
  // Same ids in the same order: the hashes carry over (they are never written after birth).
  const hashes = hashesOf(window);
  return hashes ? withHashes(list, hashes) : list;
}

/** Keeps unconfirmed entries always, and the newest PROCESSED_CAP confirmed ones inside the window. */
function prune(list: ProcessedMessage[], now: number, hashes?: Int32Array): ProcessedMessage[] {
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
  const out = list.filter((_, i) => keep[i]);
  return hashes
    ? withHashes(
        out,
        hashes.filter((_, i) => keep[i]!),
      )
    : out;
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
