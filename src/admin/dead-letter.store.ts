import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { MESSAGE_BUS, type BusMessage, type BusSubscription, type MessageBus } from '../core/message-bus.js';
import { messagingSubject, parseSubject, subjectPattern } from '../core/subjects.js';

export interface DeadLetter {
  id: string;
  /** The dlq subject it arrived on. */
  subject: string;
  /** Where it was going when it failed: replay publishes here. */
  originalSubject: string;
  direction: 'ingress' | 'egress';
  tenant: string;
  env: string;
  team: string;
  channel: string;
  /** The envelope or egress message id, when the payload has one. */
  messageId?: string;
  error: { code: string; message: string };
  deliveries?: number;
  receivedAt: string;
  replays: number;
  /** The original payload, republished as is on replay. */
  payload: unknown;
}

const MAX_ENTRIES = 1000;

/**
 * Dead-lettered messages this replica has seen since it started (`greentic.messaging.dlq.>`), the
 * newest {@link MAX_ENTRIES}, so an operator can list and replay them. Every replica listens (no
 * queue group), so each one can replay what any replica dead-lettered while it was up; with NATS
 * the DLQ stream keeps older ones.
 *
 * Payload shape on the dlq subjects: `{subject, error, deliveries, data}`, as both buses write
 * them (they are the only writers: handlers and the exception filter rethrow, and the bus applies
 * `isPermanentError`). Anything else published there is kept as its own payload, with the error a
 * `greentic-error` header names, if any.
 */
@Injectable()
export class DeadLetterStore implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(DeadLetterStore.name);
  private readonly entries = new Map<string, DeadLetter>();
  private sub?: BusSubscription;

  constructor(@Inject(MESSAGE_BUS) private readonly bus: MessageBus) {}

  async onApplicationBootstrap(): Promise<void> {
    this.sub = await this.bus.subscribe(subjectPattern('dlq'), async (m) => this.record(m));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sub?.unsubscribe();
  }

  list(tenant: string): DeadLetter[] {
    return [...this.entries.values()].filter((e) => e.tenant === tenant).reverse();
  }

  get(tenant: string, id: string): DeadLetter | undefined {
    const e = this.entries.get(id);
    return e && e.tenant === tenant ? e : undefined;
  }

  /** Publishes the original payload to its original subject again, under a fresh de-duplication id. */
  async replay(entry: DeadLetter): Promise<{ subject: string; msgId: string }> {
    entry.replays++;
    const msgId = `${entry.messageId ?? entry.id}:replay:${entry.id}:${entry.replays}`;
    const headers: Record<string, string> = {
      'greentic-tenant': entry.tenant,
      'greentic-env': entry.env,
      'greentic-replay-of': entry.id,
    };
    await this.bus.publish(entry.originalSubject, entry.payload, { msgId, headers });
    this.logger.log(
      {
        tenant: entry.tenant,
        deadLetter: entry.id,
        subject: entry.originalSubject,
        messageId: entry.messageId,
      },
      'dead-lettered message replayed',
    );
    return { subject: entry.originalSubject, msgId };
  }

  private record(m: BusMessage): void {
    const parts = parseSubject(m.subject);
    if (!parts || parts.direction !== 'dlq') return;
    const d = m.data as Record<string, unknown> | null;
    const wrapped = d !== null && typeof d === 'object' && typeof d['subject'] === 'string' && 'data' in d;
    const payload = wrapped ? d['data'] : m.data;
    const headerOriginal = m.headers['greentic-original-subject'];
    let originalSubject = wrapped ? (d['subject'] as string) : (headerOriginal ?? '');
    const original = parseSubject(originalSubject);
    let direction: 'ingress' | 'egress';
    if (original && (original.direction === 'ingress' || original.direction === 'egress'))
      direction = original.direction;
    else {
      // The in-process bus forwards the payload itself: an egress message answers another one.
      direction = payload && typeof payload === 'object' && 'inReplyTo' in payload ? 'egress' : 'ingress';
      originalSubject = messagingSubject(direction, parts);
    }
    const err =
      wrapped && d['error'] && typeof d['error'] === 'object'
        ? (d['error'] as { code?: unknown; message?: unknown })
        : undefined;
    const headerError = m.headers['Greentic-Error'] ?? m.headers['greentic-error'];
    const messageId =
      payload && typeof payload === 'object' && typeof (payload as { id?: unknown }).id === 'string'
        ? (payload as { id: string }).id
        : undefined;
    const entry: DeadLetter = {
      id: randomUUID(),
      subject: m.subject,
      originalSubject,
      direction,
      tenant: parts.tenant,
      env: parts.env,
      team: parts.team,
      channel: parts.channel,
      ...(messageId ? { messageId } : {}),
      error: {
        code: String(err?.code ?? headerError ?? 'dead_lettered'),
        message: String(err?.message ?? headerError ?? 'delivery failed'),
      },
      ...(wrapped && typeof d['deliveries'] === 'number' ? { deliveries: d['deliveries'] } : {}),
      receivedAt: new Date().toISOString(),
      replays: 0,
      payload,
    };
    this.entries.set(entry.id, entry);
    while (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
  }
}
