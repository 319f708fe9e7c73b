import { branch, type Trie } from '../common/trie.js';
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
 * Published on `duplicateSubject` when the session store refuses a message as a repeat of an id
 * this session already sent and no replies of it are at hand: a caller waiting for the repeat's
 * replies learns at once that none will come (core NATS, not a stream: only live waiters care).
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

const SUBJECT_TOKEN = /^[A-Za-z0-9_-]+$/;

/** NATS subject tokens may not hold `.`, `*`, `>` or spaces; ids from the bundle are checked at load. */
export function isSubjectToken(s: string): boolean {
  return SUBJECT_TOKEN.test(s);
}

export function ingressSubject(env: string, tenant: string, team: string, channel: string): string {
  return subjectOf('ingress', env, tenant, team, channel);
}

export function egressSubject(env: string, tenant: string, team: string, channel: string): string {
  return subjectOf('egress', env, tenant, team, channel);
}

/** Where DuplicateNotices of a channel go; no stream captures it. */
export function duplicateSubject(env: string, tenant: string, team: string, channel: string): string {
  return subjectOf('duplicate', env, tenant, team, channel);
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

type SubjectKind = 'ingress' | 'egress' | 'duplicate';
const builtSubjects: Record<SubjectKind, Trie> = {
  ingress: new Map(),
  egress: new Map(),
  duplicate: new Map(),
};
let builtCount = 0;
const MAX_BUILT_SUBJECTS = 10_000;

/**
 * One string per subject, found through its parts: every message names its subjects several times
 * (publish, de-duplication, reply keys), and a string built once keeps its hash, where a new one
 * would be hashed again at each map it meets.
 */
function subjectOf(kind: SubjectKind, env: string, tenant: string, team: string, channel: string): string {
  const node = branch(branch(branch(builtSubjects[kind], env), tenant), team);
  let subject = node.get(channel) as string | undefined;
  if (subject === undefined) {
    if (++builtCount > MAX_BUILT_SUBJECTS) {
      for (const t of Object.values(builtSubjects)) t.clear();
      builtCount = 0;
    }
    subject = `greentic.messaging.${kind}.${env}.${tenant}.${team}.${channel}`;
    node.set(channel, subject);
  }
  return subject;
}

export interface SubjectParts {
  direction: 'ingress' | 'egress' | 'dlq';
  env: string;
  tenant: string;
  team: string;
  channel: string;
}

/** Subjects are per channel, so a message path sees few of them; each is split once. */
const parsedSubjects = new Map<string, Readonly<SubjectParts> | null>();
const MAX_PARSED_SUBJECTS = 10_000;

/** The parts of a messaging subject (shared and frozen), or null for any other subject. */
export function parseSubject(subject: string): Readonly<SubjectParts> | null {
  let parts = parsedSubjects.get(subject);
  if (parts !== undefined) return parts;
  parts = splitSubject(subject);
  if (parsedSubjects.size >= MAX_PARSED_SUBJECTS) parsedSubjects.clear();
  parsedSubjects.set(subject, parts);
  return parts;
}

function splitSubject(subject: string): Readonly<SubjectParts> | null {
  const p = subject.split('.');
  if (p.length !== 7 || p[0] !== 'greentic' || p[1] !== 'messaging') return null;
  const direction = p[2];
  if (direction !== 'ingress' && direction !== 'egress' && direction !== 'dlq') return null;
  return Object.freeze({ direction, env: p[3]!, tenant: p[4]!, team: p[5]!, channel: p[6]! });
}
