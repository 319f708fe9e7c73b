import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { SessionConflictError } from '../common/errors.js';
import { tenantKey, type TenantCtx } from '../core/tenant-ctx.js';
import type {
  ProcessedMessage,
  SessionRecord,
  SessionStore,
  SessionStoreHealth,
} from '../core/session-store.js';
import { isoNow } from '../common/iso-time.js';
import { promiseOf } from '../common/promise-of.js';

interface Entry {
  record: SessionRecord;
  expiresAt: number;
}

/**
 * A copy that shares nothing mutable with the original: flow state and session data are cloned;
 * the processed-id list is frozen when committed (with its entries) and then shared by every
 * load, since cloning it cost more than the rest of a message. Callers build a new list to change it.
 */
function copyRecord(
  r: SessionRecord,
  version = r.version,
  updatedAt = r.updatedAt,
  processed = r.processed,
): SessionRecord {
  const out: SessionRecord = {
    key: r.key,
    version,
    snapshot: r.snapshot === null ? null : structuredClone(r.snapshot),
    // Most sessions keep no data, and a structured clone of `{}` is not free (docs/performance.md).
    data: isEmpty(r.data) ? {} : structuredClone(r.data),
    updatedAt,
  };
  if (processed) out.processed = processed;
  return out;
}

function isEmpty(o: Record<string, unknown>): boolean {
  for (const _ in o) return false;
  return true;
}

/**
 * Freezes the list and its new entries: those after the last frozen one. The older ones were
 * frozen when first committed, and the processed window freezes the entries it makes anywhere else.
 */
function frozenProcessed(
  processed: readonly ProcessedMessage[] | undefined,
): readonly ProcessedMessage[] | undefined {
  if (!processed || Object.isFrozen(processed)) return processed;
  for (let i = processed.length - 1; i >= 0; i--) {
    const p = processed[i]!;
    if (p.egress) Object.freeze(p.egress);
    if (Object.isFrozen(p)) break;
    Object.freeze(p);
  }
  return Object.freeze(processed);
}

/**
 * The embedded default: sessions in this process. Keys are prefixed by tenant so two tenants
 * with the same session key never meet. Per-session exclusion is a promise chain per key.
 */
@Injectable()
export class MemorySessionStore implements SessionStore, OnModuleDestroy {
  readonly kind = 'memory';
  readonly durable = false;
  private readonly entries = new Map<string, Entry>();
  private readonly processed = new Map<string, number>();
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    // Expired entries are also dropped on read; the sweep bounds memory for idle sessions.
    this.sweeper = setInterval(() => this.sweep(), 30_000);
    this.sweeper.unref();
  }

  private k(tenant: TenantCtx, key: string): string {
    return `${tenantKey(tenant)}|${key}`;
  }

  async load(tenant: TenantCtx, key: string): Promise<SessionRecord | null> {
    const e = this.entries.get(this.k(tenant, key));
    if (!e) return null;
    if (e.expiresAt <= Date.now()) {
      this.entries.delete(this.k(tenant, key));
      return null;
    }
    return copyRecord(e.record);
  }

  async commit(
    tenant: TenantCtx,
    record: SessionRecord,
    expectedVersion: number,
    ttlSeconds: number,
  ): Promise<number> {
    const k = this.k(tenant, record.key);
    const cur = this.entries.get(k);
    const curVersion = cur && cur.expiresAt > Date.now() ? cur.record.version : 0;
    if (curVersion !== expectedVersion) throw new SessionConflictError(record.key);
    const version = expectedVersion + 1;
    this.entries.set(k, {
      // The processed list is frozen in place, not copied: the caller hands it over (it builds a
      // new one to change it).
      record: copyRecord(record, version, isoNow(), frozenProcessed(record.processed)),
      expiresAt: Date.now() + ttlSeconds * 1000,
    });
    return version;
  }

  async delete(tenant: TenantCtx, key: string): Promise<void> {
    this.entries.delete(this.k(tenant, key));
  }

  runExclusive<T>(tenant: TenantCtx, key: string, fn: () => Promise<T>): Promise<T> {
    const k = this.k(tenant, key);
    const prev = this.tails.get(k);
    // Nothing running for this session (the usual case): start now, without a hop through then().
    const run = prev ? prev.then(fn, fn) : promiseOf(fn);
    // The tail settles after `run` either way; the last one clears the key. One promise per run:
    // no async wrapper around `run`.
    const release = (): void => {
      if (this.tails.get(k) === tail) this.tails.delete(k);
    };
    const tail: Promise<void> = run.then(release, release);
    this.tails.set(k, tail);
    return run;
  }

  async markProcessed(
    tenant: TenantCtx,
    key: string,
    messageId: string,
    windowSeconds: number,
  ): Promise<boolean> {
    const k = `${this.k(tenant, key)}|${messageId}`;
    const exp = this.processed.get(k);
    if (exp !== undefined && exp > Date.now()) return false;
    this.processed.set(k, Date.now() + windowSeconds * 1000);
    return true;
  }

  async isProcessed(tenant: TenantCtx, key: string, messageId: string): Promise<boolean> {
    const exp = this.processed.get(`${this.k(tenant, key)}|${messageId}`);
    return exp !== undefined && exp > Date.now();
  }

  async health(): Promise<SessionStoreHealth> {
    return { up: true, details: { kind: this.kind, sessions: this.entries.size } };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  onModuleDestroy(): Promise<void> {
    return this.close();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    for (const [k, exp] of this.processed) if (exp <= now) this.processed.delete(k);
  }
}
