import { createHash } from 'node:crypto';
import type { LoggerService } from '@nestjs/common';
import { errorText, GreenticError } from '../common/errors.js';
import { WHOLE_MESSAGE, type DeliveryLedger } from '../core/delivery-ledger.js';
import type { EgressMessage, OutboundReply } from '../core/message-envelope.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import type { DeliveryMode } from '../tenancy/bundle.types.js';

/**
 * A stable key for one egress message: the same across the bus's redeliveries, different for two
 * sessions (or two channels) whose inbound messages reused an id. Hashed so that user-chosen ids
 * and conversation names are safe in HTTP headers (`idempotency-key`).
 */
export function deliveryKey(msg: EgressMessage): string {
  return createHash('sha256')
    .update(JSON.stringify([msg.tenant, msg.env, msg.team, msg.channel, msg.sessionKey, msg.id]))
    .digest('base64url');
}

/**
 * The idempotency key of one part of an egress message: the message's delivery key for a provider
 * that sends it in one call (the webhook callback, `part` undefined), else `{deliveryKey}.{reply index}`.
 * The same on every attempt and every replica, different for every reply.
 */
export function partKey(messageKey: string, part?: number): string {
  return part === undefined ? messageKey : `${messageKey}.${part}`;
}

/**
 * Whether a failed call certainly delivered nothing: the service answered with an error status
 * (EgressError's `upstreamStatus`). A timeout or a reset may have reached it after all.
 */
export function refusedByService(e: unknown): boolean {
  return e instanceof GreenticError && typeof e.details['upstreamStatus'] === 'number';
}

/**
 * One egress message's delivery under its channel's mode, handed to the provider's `send`. The
 * provider calls `replies` (one call per reply) or `whole` (one call for all of them); each part
 * is recorded in the ledger as it goes, so a redelivery re-sends only the parts not recorded sent.
 *
 * - `at_least_once`: a part is recorded `sent` after the service accepted it. A crash between the
 *   two sends it again on the redelivery, with the same idempotency key.
 * - `at_most_once`: a part is recorded `sending` before the call. A part found `sending` by a later
 *   attempt (its sender crashed, or the call ended without an answer) is dropped and logged with
 *   its key, never sent again. A call the service answered with an error status is released and retried.
 */
export class ReplyDelivery {
  readonly key: string;
  /** Set once the provider went through `replies` or `whole` (a provider that does not gets no progress). */
  used = false;
  private readonly tenant: TenantCtx;

  constructor(
    readonly msg: EgressMessage,
    tenant: TenantCtx,
    readonly mode: DeliveryMode,
    private readonly ledger: DeliveryLedger,
    /** 1 on the bus's first delivery: nothing can be recorded yet, so at-least-once skips the read. */
    private readonly deliveryCount: number,
    private readonly logger: LoggerService,
  ) {
    this.key = deliveryKey(msg);
    this.tenant = tenant;
  }

  /** One call per reply not yet recorded sent; `key` is that reply's idempotency key. */
  replies(send: (reply: OutboundReply, index: number, key: string) => Promise<void>): Promise<void> {
    const replies = this.msg.replies;
    return this.parts(replies.length, true, (i, key) => send(replies[i]!, i, key));
  }

  /** One call for the whole message (all its replies), unless recorded sent. */
  whole(send: (key: string) => Promise<void>): Promise<void> {
    return this.parts(1, false, (_i, key) => send(key));
  }

  private async parts(
    count: number,
    perReply: boolean,
    send: (index: number, key: string) => Promise<void>,
  ): Promise<void> {
    const keyOf = (i: number) => partKey(this.key, perReply ? i : undefined);
    this.used = true;
    if (this.mode === 'at_most_once') {
      for (let i = 0; i < count; i++) await this.atMostOnce(i, keyOf(i), send);
      return;
    }
    const marks =
      this.deliveryCount > 1 ? await this.ledger.marks(this.tenant, this.key) : new Map<number, string>();
    for (let i = 0; i < count; i++) {
      if (marks.get(i) === 'sent') continue;
      await send(i, keyOf(i));
      await this.recordSent(i, keyOf(i));
    }
  }

  /**
   * After the provider's send returned: a redelivery records the whole message as finished (see
   * WHOLE_MESSAGE). A first delivery writes nothing more. Not recorded (Redis down) only means a
   * replay past the limit would be dead-lettered instead of acknowledged: logged, not failed.
   */
  async finished(): Promise<void> {
    if (this.deliveryCount <= 1) return;
    try {
      await this.ledger.markSent(this.tenant, this.key, WHOLE_MESSAGE);
    } catch (e) {
      this.logger.warn(
        { ...this.logFields(WHOLE_MESSAGE, this.key), err: errorText(e) },
        'delivered, but the delivery ledger could not record it; a replay past the delivery limit would be dead-lettered',
      );
    }
  }

  /** Whether a redelivery of this message finished before (its WHOLE_MESSAGE mark). */
  async finishedBefore(): Promise<boolean> {
    return (await this.ledger.marks(this.tenant, this.key)).get(WHOLE_MESSAGE) === 'sent';
  }

  /**
   * Records a part the service accepted. A ledger that cannot be written (Redis down) does not
   * fail the delivery: the part went out, and failing would make the bus retry the message and
   * send the part again on every retry until the ledger is back. Only a later redelivery (a crash
   * before the ack) can then repeat it, with the same key, as at-least-once allows.
   */
  private async recordSent(part: number, key: string): Promise<void> {
    try {
      await this.ledger.markSent(this.tenant, this.key, part);
    } catch (e) {
      this.logger.warn(
        { ...this.logFields(part, key), err: errorText(e) },
        'reply sent, but the delivery ledger could not record it; a redelivery would send it again',
      );
    }
  }

  /** What a log line about one part says: where it goes, which message and reply, its key. */
  private logFields(part: number, key: string): Record<string, unknown> {
    return {
      tenant: this.msg.tenant,
      env: this.msg.env,
      team: this.msg.team,
      channel: this.msg.channel,
      messageId: this.msg.inReplyTo,
      egressId: this.msg.id,
      reply: part,
      idempotencyKey: key,
      delivery: this.mode,
    };
  }

  private async atMostOnce(
    i: number,
    key: string,
    send: (index: number, key: string) => Promise<void>,
  ): Promise<void> {
    const found = await this.ledger.claim(this.tenant, this.key, i);
    if (found === 'sent') return;
    if (found === 'sending') {
      this.logger.warn(
        this.logFields(i, key),
        'reply dropped: an earlier attempt may have sent it (at_most_once)',
      );
      return;
    }
    try {
      await send(i, key);
    } catch (e) {
      if (refusedByService(e)) await this.ledger.release(this.tenant, this.key, i);
      throw e;
    }
    // Unrecorded, the part stays `sending`, which a redelivery drops: never sent twice either way.
    await this.recordSent(i, key);
  }
}
