/**
 * The messaging subjects, in one place (ARCHITECTURE.md §1):
 *
 *   greentic.messaging.{ingress|egress|dlq}.{env}.{tenant}.{team}.{channel}
 *
 * These are logical subjects, what the app publishes and subscribes to; a bus may carry them on
 * the wire in another form (the NATS bus adds a prefix and a partition token, see nats-subjects).
 */

/** Where a subject sits in a message's life: in, out, or dead-lettered. */
export type SubjectDirection = 'ingress' | 'egress' | 'dlq';

const DIRECTIONS: ReadonlySet<string> = new Set<SubjectDirection>(['ingress', 'egress', 'dlq']);

/** The two tokens every messaging subject starts with. */
export const SUBJECT_ROOT = 'greentic.messaging';

/** Token count of a subject: greentic.messaging.{direction}.{env}.{tenant}.{team}.{channel}. */
export const SUBJECT_TOKENS = 7;

export interface SubjectParts {
  direction: SubjectDirection;
  env: string;
  tenant: string;
  team: string;
  channel: string;
}

/** A channel's coordinates, as envelopes and egress messages carry them. */
export interface SubjectCoordinates {
  env: string;
  tenant: string;
  team: string;
  channel: string;
}

const SUBJECT_TOKEN = /^[A-Za-z0-9_-]+$/;

/** NATS subject tokens may not hold `.`, `*`, `>` or spaces; ids from the bundle are checked at load. */
export function isSubjectToken(s: string): boolean {
  return SUBJECT_TOKEN.test(s);
}

export function messagingSubject(direction: SubjectDirection, c: SubjectCoordinates): string {
  return `${SUBJECT_ROOT}.${direction}.${c.env}.${c.tenant}.${c.team}.${c.channel}`;
}

export function ingressSubject(env: string, tenant: string, team: string, channel: string): string {
  return messagingSubject('ingress', { env, tenant, team, channel });
}

export function egressSubject(env: string, tenant: string, team: string, channel: string): string {
  return messagingSubject('egress', { env, tenant, team, channel });
}

export function deadLetterSubject(env: string, tenant: string, team: string, channel: string): string {
  return messagingSubject('dlq', { env, tenant, team, channel });
}

/**
 * Where a message that cannot be processed goes: the dead-letter subject of its channel. Undefined
 * for subjects that have none (dead letters themselves, anything else).
 */
export function deadLetterSubjectOf(subject: string): string | undefined {
  const p = parseSubject(subject);
  if (!p || (p.direction !== 'ingress' && p.direction !== 'egress')) return undefined;
  return messagingSubject('dlq', p);
}

/**
 * A subscription pattern for one direction: every subject of it (`greentic.messaging.egress.>`),
 * or, with some coordinates, those coordinates and `*` for the others.
 */
export function subjectPattern(direction: SubjectDirection, c: Partial<SubjectCoordinates> = {}): string {
  if (c.env === undefined && c.tenant === undefined && c.team === undefined && c.channel === undefined) {
    return `${SUBJECT_ROOT}.${direction}.>`;
  }
  return messagingSubject(direction, {
    env: c.env ?? '*',
    tenant: c.tenant ?? '*',
    team: c.team ?? '*',
    channel: c.channel ?? '*',
  });
}

/** The direction a subject or pattern names (its third token), if it is a messaging one. */
export function subjectDirection(subjectOrPattern: string): SubjectDirection | undefined {
  const t = subjectOrPattern.split('.', 3);
  if (t[0] !== 'greentic' || t[1] !== 'messaging' || t[2] === undefined) return undefined;
  return DIRECTIONS.has(t[2]) ? (t[2] as SubjectDirection) : undefined;
}

/** The parts of a messaging subject, or null for any other subject (or a pattern). */
export function parseSubject(subject: string): SubjectParts | null {
  const p = subject.split('.');
  if (p.length !== SUBJECT_TOKENS || p[0] !== 'greentic' || p[1] !== 'messaging') return null;
  const direction = p[2]!;
  if (!DIRECTIONS.has(direction)) return null;
  const [env, tenant, team, channel] = [p[3]!, p[4]!, p[5]!, p[6]!];
  if (![env, tenant, team, channel].every(isSubjectToken)) return null;
  return { direction: direction as SubjectDirection, env, tenant, team, channel };
}

/**
 * A replica's own reply subject: replies and duplicate notices for the callers waiting on that
 * replica (`?wait=true`). No stream; the ingress publish names it in the `greentic-reply-to`
 * header, and the partition owner's egress publish names it (`PublishOptions.replyTo`), so the
 * replies reach it once. A bus may carry that in the egress publish itself (the NATS bus puts
 * the replica in the egress wire subject: `awaitedEgressToken`).
 */
export function replySubject(replica: string): string {
  return `${SUBJECT_ROOT}.reply.${replica}`;
}

/**
 * The token a bus may add to an egress subject to say which replica waits for it: the replica of
 * a reply subject, or `_` when nobody waits (replica ids are never `_`, see replicaIdOf).
 */
export function awaitedEgressToken(replyTo: string | undefined): string {
  if (replyTo === undefined || !isReplySubject(replyTo)) return NO_WAITER;
  return replyTo.slice(SUBJECT_ROOT.length + '.reply.'.length);
}

/** The egress token of a reply nobody waits for. */
export const NO_WAITER = '_';

/** Header naming the reply subject of the replica a caller waits on. */
export const REPLY_TO_HEADER = 'greentic-reply-to';

/** Whether `s` is a reply subject (a forged header naming anything else is ignored). */
export function isReplySubject(s: string): boolean {
  const t = s.split('.');
  return (
    t.length === 4 && t[0] === 'greentic' && t[1] === 'messaging' && t[2] === 'reply' && isSubjectToken(t[3]!)
  );
}

/** Header of replies the processor re-publishes for a replayed message (egress checks its ledger). */
export const REPLAY_HEADER = 'greentic-replay';
