import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DeliveryLimitError, GreenticError } from '../common/errors.js';
import { retryAfterMs } from './nats/nats-errors.js';
import { BundleRegistry, type ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import type { Bundle, ChannelBinding } from '../tenancy/bundle.types.js';
import { MESSAGE_BUS, type BusMessage, type MessageBus } from '../core/message-bus.js';
import { type EgressMessage } from '../core/message-envelope.js';
import { egressSubject, REPLAY_HEADER, subjectPattern } from '../core/subjects.js';
import { ProviderRegistry } from './providers/provider-registry.service.js';
import { DELIVERY_LEDGER, type DeliveryLedger } from '../core/delivery-ledger.js';
import { ReplyDelivery } from './reply-delivery.js';
import type { BusRoute } from './bus.transport.js';

/** Longest Retry-After honoured in-line before the redelivery. */
const MAX_RETRY_AFTER_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Reads `retryable` and the wait a platform asked for (`retryAfterMs`, or a Retry-After value:
 * seconds or HTTP date) from a provider's error details. Errors without hints are retryable
 * (network failures and the like).
 */
export function retryHints(e: unknown): { retryable: boolean; retryAfterMs?: number } {
  const retryable = !(e instanceof GreenticError) || e.details['retryable'] !== false;
  const ms = retryAfterMs(e);
  return ms === undefined ? { retryable } : { retryable, retryAfterMs: ms };
}

/** One provider's share of egress: the subject patterns of the channels bound to it. */
export interface EgressRoute {
  provider: string;
  /** Queue group and durable consumer prefix, one per provider. */
  queue: string;
  patterns: string[];
}

/**
 * Which egress subjects each provider the bundle uses receives. Egress subjects name the channel,
 * not the provider, so a provider's patterns are its channels: one `*.*.*.{channel}` pattern for
 * a channel id that only this provider uses (whatever the tenant, env and team), else the exact
 * subjects of its channels with that id. The patterns of two providers never overlap, so each
 * reply reaches exactly one provider's consumer.
 */
export function egressRoutes(
  bundle: Bundle,
  sends: (channel: ChannelBinding) => boolean = () => true,
): EgressRoute[] {
  const byId = new Map<string, { provider: string; subject: string }[]>();
  for (const tenant of bundle.tenants.values())
    for (const env of tenant.envs.values())
      for (const team of env.teams.values())
        for (const ch of team.channels.values()) {
          // A channel that sends nothing (a webhook without callback_url) needs no consumer.
          if (!sends(ch)) continue;
          const list = byId.get(ch.id) ?? [];
          list.push({ provider: ch.provider, subject: egressSubject(env.id, tenant.id, team.id, ch.id) });
          byId.set(ch.id, list);
        }
  const patterns = new Map<string, Set<string>>();
  const add = (provider: string, pattern: string) => {
    const set = patterns.get(provider) ?? new Set<string>();
    set.add(pattern);
    patterns.set(provider, set);
  };
  for (const [id, list] of byId) {
    const providers = new Set(list.map((c) => c.provider));
    if (providers.size === 1) add(list[0]!.provider, subjectPattern('egress', { channel: id }));
    else for (const c of list) add(c.provider, c.subject);
  }
  return [...patterns.keys()].sort().map((provider) => ({
    provider,
    queue: `egress-${provider}`,
    patterns: [...patterns.get(provider)!].sort(),
  }));
}

/**
 * Delivers egress to each channel's provider. EgressController consumes the egress subjects through
 * the bus transport on `routes()`: one consumer (queue group) per provider the bundle uses, so a
 * provider that is slow or failing (a 429 storm, an outage) holds up only its own replies. Within a provider the bus keeps per-session order; each reply is sent once across
 * replicas. A retryable failure throws and the bus redelivers with backoff (after the service's
 * Retry-After), then dead-letters; a non-retryable one is dead-lettered at once.
 */
@Injectable()
export class EgressDispatcher implements OnApplicationBootstrap {
  private readonly logger = new Logger(EgressDispatcher.name);

  constructor(
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    private readonly registry: BundleRegistry,
    private readonly providers: ProviderRegistry,
    @Inject(DELIVERY_LEDGER) private readonly ledger: DeliveryLedger,
  ) {}

  /** at_most_once across replicas needs marks they all see: say so when they live in this process. */
  onApplicationBootstrap(): void {
    if (this.ledger.durable || this.bus.kind !== 'nats') return;
    const channels: string[] = [];
    for (const t of this.registry.bundle.tenants.values())
      for (const e of t.envs.values())
        for (const tm of e.teams.values())
          for (const c of tm.channels.values())
            if (c.delivery === 'at_most_once') channels.push(`${t.id}/${e.id}/${tm.id}/${c.id}`);
    if (channels.length > 0)
      this.logger.warn(
        { channels },
        'delivery: at_most_once holds only within one replica: delivery marks are in memory (set GREENTIC_SESSIONS=redis)',
      );
  }

  /** The subscriptions egress is consumed through: each provider's patterns under its own queue. */
  routes(): BusRoute[] {
    const routes = egressRoutes(this.registry.bundle, (ch) => this.providers.sends(ch));
    this.logger.log(
      { consumers: routes.map((r) => ({ provider: r.provider, queue: r.queue, subjects: r.patterns })) },
      'egress consumers, one per provider',
    );
    return routes.flatMap((r) => r.patterns.map((pattern) => ({ pattern, queue: r.queue })));
  }

  /**
   * Sends one egress message through `resolved`, the channel its subject names (TenantGuard
   * resolved it and EgressController checked the message's own claims against it); a throw asks
   * the bus to redeliver it.
   */
  async deliver(msg: BusMessage<EgressMessage>, resolved: ResolvedChannel): Promise<void> {
    const m = msg.data;
    const mode = resolved.channel.delivery ?? 'at_least_once';
    // A replay re-published by the processor counts as a redelivery: the ledger says what was sent.
    const attempt = msg.headers[REPLAY_HEADER] === '1' ? Math.max(2, msg.deliveryCount) : msg.deliveryCount;
    const delivery = new ReplyDelivery(m, resolved.tenant, mode, this.ledger, attempt, this.logger);
    if (msg.pastLimit) {
      // Replayed past the limit with a stuck predecessor on its partition (see SubscribeOptions
      // .replaysPastLimit): acknowledged if a redelivery finished it, else dead-lettered unsent;
      // the provider is not called either way.
      if (!(await delivery.finishedBefore())) throw new DeliveryLimitError(m.inReplyTo);
      this.logger.log(
        { tenant: m.tenant, channel: m.channel, messageId: m.inReplyTo, attempt: msg.deliveryCount },
        'egress message replayed past its delivery limit: delivered before, acknowledged',
      );
      return;
    }
    const provider = this.providers.get(resolved.channel.provider);
    try {
      await provider.send(m, resolved, delivery);
      if (!delivery.used && mode === 'at_most_once') this.warnIgnored(provider.id);
      await delivery.finished();
    } catch (e) {
      const { retryable, retryAfterMs } = retryHints(e);
      const log = {
        tenant: m.tenant,
        channel: m.channel,
        provider: resolved.channel.provider,
        messageId: m.inReplyTo,
        idempotencyKey: delivery.key,
        delivery: mode,
        attempt: msg.deliveryCount,
        retryable,
        retryAfterMs,
        err: (e as Error).message,
      };
      if (!retryable) {
        // A 4xx from the service will fail the same way again: the error is permanent, so the bus
        // dead-letters it at once (its own record: idempotent, with the delivery count).
        this.logger.error(log, 'egress delivery refused by the service; not retried');
        throw e;
      }
      this.logger.warn(log, 'egress delivery failed, will retry');
      // Honour the service's Retry-After (capped, so one slow channel cannot hold a consumer).
      if (retryAfterMs !== undefined && retryAfterMs > 0)
        await sleep(Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
      throw e;
    }
  }

  private readonly ignoring = new Set<string>();

  /** A custom provider that sends without `delivery` cannot honour at_most_once: say so once. */
  private warnIgnored(provider: string): void {
    if (this.ignoring.has(provider)) return;
    this.ignoring.add(provider);
    this.logger.error(
      { provider },
      'provider sent without its ReplyDelivery: at_most_once is not applied to its channels (see docs/providers.md)',
    );
  }
}
