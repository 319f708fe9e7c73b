import type { OwnershipFence } from './partition-ownership.js';

/**
 * The bus seam. The embedded default is in-process; production is NATS JetStream. Both carry
 * JSON payloads on the subjects of ARCHITECTURE.md §1 and hand each delivery to a handler
 * that acks by returning and asks for redelivery by throwing.
 */
export interface BusMessage<T = unknown> {
  subject: string;
  data: T;
  headers: Record<string, string>;
  /** 1 on first delivery. */
  deliveryCount: number;
  /** Epoch ms of the publish, where the bus knows it without a header (the in-process bus). */
  publishedAt?: number;
  /**
   * The partition ownership the delivery runs under, where the bus has owners (NATS): a session
   * write passes it on, so a replica that lost the partition cannot write.
   */
  fence?: OwnershipFence;
  /**
   * Delivered past its subscription's `maxDeliver` (a replay after crashes, on a subscription that
   * set `replaysPastLimit`): the handler acknowledges it only if its work was already done, and
   * otherwise refuses it with DeliveryLimitError, which dead-letters it.
   */
  pastLimit?: boolean;
}

export interface PublishOptions {
  /**
   * De-duplication id (JetStream `Nats-Msg-Id`): a second publish on the same subject with the same
   * id inside the duplicate window is dropped. The publisher chooses its scope; a message's is its
   * session (`messageDedupeId`), so one user's id never drops another's message.
   */
  msgId?: string;
  headers?: Record<string, string>;
  /**
   * A replica's reply subject (`replySubject`) whose subscribers get this message too, once, even
   * when the publish is dropped as a duplicate (a replay answers its caller). The NATS bus carries
   * both in one egress publish.
   */
  replyTo?: string;
}

export interface SubscribeOptions {
  /** Competing consumers sharing one queue/durable name get each message once. */
  queue?: string;
  /** Max deliveries before the message is dead-lettered. */
  maxDeliver?: number;
  /**
   * The handler recognises work it already did (MessageProcessor's processed ids), so a message
   * delivered past `maxDeliver` is handed to it once more, marked `pastLimit`, instead of being
   * dead-lettered unseen. On a partition's shared ack floor, the messages that finished behind one
   * that crashes every replica are replayed with it on each crash and reach the limit with it.
   */
  replaysPastLimit?: boolean;
}

/** What the bus did with a publish. */
export interface PublishAck {
  /** Dropped as a repeat of `msgId` inside the duplicate window: no subscriber gets it. */
  readonly duplicate: boolean;
}

export type BusHandler<T = unknown> = (msg: BusMessage<T>) => Promise<void>;

export interface BusSubscription {
  unsubscribe(): Promise<void>;
}

export interface BusHealth {
  up: boolean;
  details: Record<string, unknown>;
}

export interface MessageBus {
  readonly kind: string;
  /** Resolves once the message is accepted (durably, on NATS) or dropped as a duplicate. */
  publish(subject: string, data: unknown, opts?: PublishOptions): Promise<PublishAck>;
  /** `pattern` uses NATS wildcards: `*` one token, `>` the rest. */
  subscribe<T = unknown>(
    pattern: string,
    handler: BusHandler<T>,
    opts?: SubscribeOptions,
  ): Promise<BusSubscription>;
  health(): Promise<BusHealth>;
  /** Stop delivering, wait for in-flight handlers, release connections. */
  close(): Promise<void>;
}

export const MESSAGE_BUS = Symbol('MESSAGE_BUS');

/** NATS-style subject matching, shared by the in-process bus and tests. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const t = p[i];
    if (t === '>') return s.length > i;
    if (i >= s.length) return false;
    if (t !== '*' && t !== s[i]) return false;
  }
  return p.length === s.length;
}
