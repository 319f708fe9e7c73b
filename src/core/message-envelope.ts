/** One inbound message, as it travels on the bus (JSON), whatever channel it came from. */
export interface MessageEnvelope {
  /** Provider message id: the idempotency key. */
  id: string;
  tenant: string;
  env: string;
  team: string;
  channel: string;
  provider: string;
  conversationId: string;
  userId: string;
  /** `{tenant}:{provider}:{conversation}:{user}` */
  sessionKey: string;
  text: string;
  attachments: Attachment[];
  /** Button/card payload when the user clicked rather than typed. */
  action?: Record<string, unknown>;
  /** The user's locale as the channel reports it (`en-US`, `de`); selects a pack's i18n strings. */
  locale?: string;
  /** ISO-8601. */
  timestamp: string;
  /** The provider payload, size-capped. */
  raw?: unknown;
  traceparent?: string;
  /** Present when the caller waits for replies (sync webhook): where they are also sent. */
  replyTo?: string;
  /** Provider delivery hints (thread, service URL...), copied to the replies' egress `meta`. */
  meta?: Record<string, unknown>;
}

/**
 * Published on the waiting replica's reply subject (`replySubject`, subjects.ts) when the session
 * store refuses a message as a repeat of an id this session already sent and no replies of it are
 * at hand: the caller waiting for the repeat's replies learns at once that none will come (core
 * NATS, not a stream: only live waiters care).
 */
export interface DuplicateNotice {
  inReplyTo: string;
  tenant: string;
  env: string;
  team: string;
  channel: string;
  sessionKey: string;
}

export interface Attachment {
  contentType: string;
  url?: string;
  name?: string;
  content?: unknown;
}

/** One reply the flow produced. Providers map `card`/`choices` to their own rich formats. */
export interface OutboundReply {
  text?: string;
  card?: Record<string, unknown>;
  choices?: string[];
}

/** What goes on the egress subject: the replies for one inbound message. */
export interface EgressMessage {
  /** `{inReplyTo}:{index}` style id, stable across retries for idempotent delivery. */
  id: string;
  inReplyTo: string;
  tenant: string;
  env: string;
  team: string;
  channel: string;
  provider: string;
  conversationId: string;
  userId: string;
  sessionKey: string;
  replies: OutboundReply[];
  /** Flow outcome for this message. */
  status: 'completed' | 'parked' | 'failed';
  error?: { code: string; message: string };
  timestamp: string;
  traceparent?: string;
  /** Provider-specific delivery hints (thread ts, service url...). */
  meta?: Record<string, unknown>;
}

/**
 * The bus de-duplication id (`msgId`) of a message, or of its replies (`id` = the reply id): its id
 * inside its session. Message ids are unique per session only (a client's `1` or `msg-1`, a
 * platform's id unique per bot or conversation), so two users reusing one never drop each
 * other's messages, and the bus's scope is the session store's; a provider's retry is the same
 * session and the same id, so it is still dropped. JSON keeps the pair unambiguous whatever the
 * ids hold (`|`, `:`) and escapes the line breaks NATS headers refuse.
 */
export function messageDedupeId(sessionKey: string, id: string): string {
  return JSON.stringify([sessionKey, id]);
}
