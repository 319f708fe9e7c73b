import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { GreenticError } from '../common/errors.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { MESSAGE_BUS, type BusSubscription, type MessageBus } from './message-bus.js';
import type { EgressMessage } from './message-envelope.js';
import { ProviderRegistry } from './providers/provider-registry.service.js';

/** Longest Retry-After honoured in-line before the redelivery. */
const MAX_RETRY_AFTER_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Reads `retryable` and `retryAfterMs` (or a Retry-After value: seconds or HTTP date) from a
 * provider's error details. Errors without hints are retryable (network failures and the like).
 */
export function retryHints(e: unknown): { retryable: boolean; retryAfterMs?: number } {
  const d = e instanceof GreenticError ? e.details : {};
  const retryable = d['retryable'] !== false;
  if (typeof d['retryAfterMs'] === 'number') return { retryable, retryAfterMs: d['retryAfterMs'] };
  const ra = d['retryAfter'];
  if (typeof ra === 'string' || typeof ra === 'number') {
    const secs = Number(ra);
    if (Number.isFinite(secs)) return { retryable, retryAfterMs: secs * 1000 };
    const at = Date.parse(String(ra));
    if (Number.isFinite(at)) return { retryable, retryAfterMs: Math.max(0, at - Date.now()) };
  }
  return { retryable };
}

/**
 * Delivers egress to each channel's provider. One queue group across replicas, so each reply is
 * sent once; a retryable failure throws and the bus redelivers with backoff (after the service's
 * Retry-After), then dead-letters; a non-retryable one is dead-lettered at once.
 */
@Injectable()
export class EgressDispatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(EgressDispatcher.name);
  private sub?: BusSubscription;

  constructor(
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    private readonly registry: BundleRegistry,
    private readonly providers: ProviderRegistry,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.sub = await this.bus.subscribe<EgressMessage>(
      'greentic.messaging.egress.>',
      async (msg) => {
        const m = msg.data;
        const resolved = this.registry.resolveChannel({
          tenant: m.tenant,
          env: m.env,
          team: m.team,
          channel: m.channel,
        });
        try {
          await this.providers.get(resolved.channel.provider).send(m, resolved);
        } catch (e) {
          const { retryable, retryAfterMs } = retryHints(e);
          const log = {
            tenant: m.tenant,
            channel: m.channel,
            messageId: m.inReplyTo,
            attempt: msg.deliveryCount,
            retryable,
            retryAfterMs,
            err: (e as Error).message,
          };
          if (!retryable) {
            // A 4xx from the service will fail the same way again: dead-letter now, don't hammer it.
            this.logger.error(log, 'egress delivery refused by the service, dead-lettered');
            await this.bus.publish(
              msg.subject.replace(/^greentic\.messaging\.egress\./, 'greentic.messaging.dlq.'),
              {
                subject: msg.subject,
                error: { code: 'egress_failed', message: (e as Error).message },
                data: m,
              },
            );
            return;
          }
          this.logger.warn(log, 'egress delivery failed, will retry');
          // Honour the service's Retry-After (capped, so one slow channel cannot hold a consumer).
          if (retryAfterMs !== undefined && retryAfterMs > 0)
            await sleep(Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
          throw e;
        }
      },
      { queue: 'greentic-egress', maxDeliver: 5 },
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sub?.unsubscribe();
  }
}
