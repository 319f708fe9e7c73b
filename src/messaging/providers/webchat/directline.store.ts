import type { Activity, ActivitySet } from './directline.types.js';

export type ActivityListener = (set: ActivitySet) => void;

/**
 * Conversations and their activity history. The embedded default keeps them in memory
 * (MemoryDirectLineStore); a shared store would let several replicas serve one conversation.
 */
export interface DirectLineStore {
  create(channelKey: string, conversationId: string): Promise<void>;
  exists(channelKey: string, conversationId: string): Promise<boolean>;
  /**
   * Appends with the next id and watermark. With `dedupeKey`, an activity already appended under
   * the same key is not appended again; its id is returned instead.
   */
  append(
    channelKey: string,
    conversationId: string,
    activity: Activity,
    dedupeKey?: string,
  ): Promise<{ activity: Activity; duplicate: boolean }>;
  /** Activities after `watermark` (all when absent), with the watermark to ask from next. */
  since(channelKey: string, conversationId: string, watermark?: number): Promise<ActivitySet>;
  /** Live activities of one conversation (the WebSocket stream). */
  listen(channelKey: string, conversationId: string, listener: ActivityListener): () => void;
}

interface Conversation {
  activities: Activity[];
  /** Watermark of the last activity appended. */
  seq: number;
  lastActive: number;
  dedupe: Map<string, Activity>;
  listeners: Set<ActivityListener>;
}

export interface MemoryStoreOptions {
  /** Activities kept per conversation; older ones fall out of the window. */
  historyLimit: number;
  /** Idle conversations are forgotten after this long. */
  idleTtlMs: number;
  /** Upper bound on conversations held, oldest idle evicted first. */
  maxConversations: number;
}

export const DEFAULT_MEMORY_STORE_OPTIONS: MemoryStoreOptions = {
  historyLimit: 500,
  idleTtlMs: 24 * 3600_000,
  maxConversations: 50_000,
};

/** The embedded store: one process, nothing survives a restart (as with the in-process bus). */
export class MemoryDirectLineStore implements DirectLineStore {
  private readonly conversations = new Map<string, Conversation>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly opts: MemoryStoreOptions = DEFAULT_MEMORY_STORE_OPTIONS) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  get size(): number {
    return this.conversations.size;
  }

  async create(channelKey: string, conversationId: string): Promise<void> {
    const key = `${channelKey}|${conversationId}`;
    if (this.conversations.has(key)) return;
    if (this.conversations.size >= this.opts.maxConversations) this.evictOldest();
    this.conversations.set(key, {
      activities: [],
      seq: 0,
      lastActive: Date.now(),
      dedupe: new Map(),
      listeners: new Set(),
    });
  }

  async exists(channelKey: string, conversationId: string): Promise<boolean> {
    return this.conversations.has(`${channelKey}|${conversationId}`);
  }

  async append(
    channelKey: string,
    conversationId: string,
    activity: Activity,
    dedupeKey?: string,
  ): Promise<{ activity: Activity; duplicate: boolean }> {
    const c = this.require(channelKey, conversationId);
    if (dedupeKey !== undefined) {
      const prior = c.dedupe.get(dedupeKey);
      if (prior) return { activity: prior, duplicate: true };
    }
    c.seq += 1;
    const stored: Activity = { ...activity, id: `${conversationId}|${String(c.seq).padStart(7, '0')}` };
    c.activities.push(stored);
    if (c.activities.length > this.opts.historyLimit)
      c.activities.splice(0, c.activities.length - this.opts.historyLimit);
    if (dedupeKey !== undefined) {
      c.dedupe.set(dedupeKey, stored);
      if (c.dedupe.size > this.opts.historyLimit) c.dedupe.delete(c.dedupe.keys().next().value as string);
    }
    c.lastActive = Date.now();
    const set: ActivitySet = { activities: [stored], watermark: String(c.seq) };
    for (const l of c.listeners) l(set);
    return { activity: stored, duplicate: false };
  }

  async since(channelKey: string, conversationId: string, watermark?: number): Promise<ActivitySet> {
    const c = this.require(channelKey, conversationId);
    c.lastActive = Date.now();
    const first = c.seq - c.activities.length + 1;
    const from = watermark === undefined ? 0 : Math.max(0, watermark - first + 1);
    return { activities: c.activities.slice(from), watermark: String(c.seq) };
  }

  listen(channelKey: string, conversationId: string, listener: ActivityListener): () => void {
    const c = this.require(channelKey, conversationId);
    c.listeners.add(listener);
    return () => c.listeners.delete(listener);
  }

  private require(channelKey: string, conversationId: string): Conversation {
    const c = this.conversations.get(`${channelKey}|${conversationId}`);
    if (!c) throw new ConversationNotFound(conversationId);
    return c;
  }

  private sweep(): void {
    const cut = Date.now() - this.opts.idleTtlMs;
    for (const [k, c] of this.conversations)
      if (c.lastActive < cut && c.listeners.size === 0) this.conversations.delete(k);
  }

  private evictOldest(): void {
    let oldest: string | undefined;
    let at = Infinity;
    for (const [k, c] of this.conversations) {
      if (c.listeners.size === 0 && c.lastActive < at) {
        at = c.lastActive;
        oldest = k;
      }
    }
    if (oldest) this.conversations.delete(oldest);
  }
}

export class ConversationNotFound extends Error {
  constructor(readonly conversationId: string) {
    super(`conversation '${conversationId}' not found`);
  }
}
