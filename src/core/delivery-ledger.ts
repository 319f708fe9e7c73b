import type { TenantCtx } from './tenant-ctx.js';

/**
 * What is recorded about one part of an egress message (a reply, or the one callback that carries
 * all of them): `sending` before an at-most-once call, `sent` once the service accepted it.
 */
export type DeliveryMark = 'sending' | 'sent';

/**
 * Delivery progress per part of an egress message, where every replica sees it (Redis with
 * GREENTIC_SESSIONS=redis, else this process): a redelivered message re-sends only the parts not
 * recorded sent, and an at-most-once part found `sending` is dropped instead of sent again.
 * `key` is the message's delivery key (tenant, env, team, channel, session and egress id hashed).
 */
export interface DeliveryLedger {
  /** Whether marks outlive this process (and are shared by every replica). */
  readonly durable: boolean;
  /** The marks recorded for the message's parts, by part index. */
  marks(tenant: TenantCtx, key: string): Promise<Map<number, DeliveryMark>>;
  /**
   * Records `sending` for the part unless it has a mark; answers the mark it found (then nothing
   * is written), or undefined when the part was free and is now this caller's to send. Atomic.
   */
  claim(tenant: TenantCtx, key: string, part: number): Promise<DeliveryMark | undefined>;
  markSent(tenant: TenantCtx, key: string, part: number): Promise<void>;
  /** Forgets a `sending` mark: the service refused the call, so nothing reached it. */
  release(tenant: TenantCtx, key: string, part: number): Promise<void>;
}

export const DELIVERY_LEDGER = Symbol('DELIVERY_LEDGER');

/**
 * The part index of the whole message: marked `sent` when a redelivery of it finished (every part
 * sent or skipped as sent), so a replay past the bus's delivery limit (SubscribeOptions
 * .replaysPastLimit) can tell a finished message from one that never was, without calling the
 * provider. A first delivery needs no such mark: only a message delivered again can pass the limit.
 */
export const WHOLE_MESSAGE = -1;

/**
 * How long marks are kept: redeliveries come within the bus's ack wait and backoff (seconds to
 * minutes), so an hour covers them with room, and the store does not grow with the traffic of a day.
 */
export const DELIVERY_MARK_TTL_MS = 3_600_000;
