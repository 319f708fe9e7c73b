import type { ProcessedMessage, SessionRecord } from '../../core/session-store.js';
import { normalizeProcessed } from '../processed-window.js';

/**
 * How a session is laid out in its Redis hash: `v` the version, `r` the record's JSON without its
 * processed ids (snapshot, `session.*` data, updatedAt), and one field `p:{messageId}` per
 * processed entry. A commit then writes what changed (the new entry, an entry that dropped its
 * replies, the ids pruned) instead of the whole window, which was most of a record's bytes: 64 ids
 * in about 3 KB, serialised, sent and stored again on every message.
 */

/** A session record as stored: `r` parsed, with the processed entries of its fields. */
export type StoredRecord = Omit<SessionRecord, 'key' | 'version'>;

export interface StoredSession {
  version: number;
  record: StoredRecord;
  /**
   * Whether the hash holds exactly the record's processed entries as `p:` fields. False for a
   * record whose ids sit inside `r` (written before this layout): its next commit rewrites them all.
   */
  exact: boolean;
}

const FIELD_PREFIX = 'p:';

export function processedField(id: string): string {
  return FIELD_PREFIX + id;
}

/** A session hash as HGETALL returns it (an empty object for a missing key); null when absent. */
export function readSessionHash(hash: Record<string, string>): StoredSession | null {
  const r = hash['r'];
  if (r === undefined) return null;
  const { processed: inline, ...head } = JSON.parse(r) as StoredRecord & { processed?: unknown };
  const entries: ProcessedMessage[] = [];
  for (const field in hash)
    if (field.startsWith(FIELD_PREFIX)) entries.push(JSON.parse(hash[field]!) as ProcessedMessage);
  const legacy = normalizeProcessed(inline);
  if (legacy) {
    const fielded = new Set(entries.map((p) => p.id));
    for (const p of legacy) if (!fielded.has(p.id)) entries.push(p);
  }
  // Hash fields have no order; the window is oldest first (sort is stable for equal times).
  entries.sort((a, b) => a.at - b.at);
  // Entries are never changed in place (processed-window), so commits can tell them by identity.
  for (const p of entries) Object.freeze(p);
  const record: StoredRecord = head;
  if (entries.length > 0) record.processed = entries;
  return { version: Number(hash['v'] ?? 0), record, exact: legacy === undefined };
}

/** The flat `[field, value, …]` array a script's HGETALL returns, as ioredis's `hgetall` gives it. */
export function hashOf(flat: readonly string[] | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (flat) for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

/** The processed fields one commit writes: `set` as `[field, json, …]`, `del` field names. */
export interface ProcessedWrite {
  /** Every `p:` field not in `set` goes: what the hash holds is not known entry by entry. */
  full: boolean;
  set: string[];
  del: string[];
}

/**
 * What to write for `next` when the hash holds exactly `prev`, or every entry of `next` when `prev`
 * is not known. A window only grows at its end, swaps an entry for a copy without its replies, or
 * loses entries (processed-window.ts), so one walk of both in order finds the changes: an entry
 * not in `prev` (by identity) is written, one gone from `next` is deleted. The script deletes
 * before it writes, so an id that left and came back at another place is still written.
 */
export function processedWrite(
  prev: readonly ProcessedMessage[] | undefined,
  next: readonly ProcessedMessage[] | undefined,
): ProcessedWrite {
  const list = next ?? [];
  const set: string[] = [];
  const del: string[] = [];
  let i = 0;
  let j = 0;
  if (prev !== undefined)
    while (i < prev.length && j < list.length) {
      const before = prev[i]!;
      const after = list[j]!;
      if (before === after) {
        i++;
        j++;
      } else if (before.id === after.id) {
        set.push(processedField(after.id), JSON.stringify(after));
        i++;
        j++;
      } else {
        del.push(processedField(before.id));
        i++;
      }
    }
  if (prev !== undefined) for (; i < prev.length; i++) del.push(processedField(prev[i]!.id));
  for (; j < list.length; j++) set.push(processedField(list[j]!.id), JSON.stringify(list[j]));
  return { full: prev === undefined, set, del };
}
