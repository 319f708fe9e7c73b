import { SetMetadata } from '@nestjs/common';
import { GreenticError } from '../../common/errors.js';
import type { ResolvedChannel } from '../../tenancy/bundle-registry.service.js';
import type { ChannelBinding } from '../../tenancy/bundle.types.js';
import type { EgressMessage, MessageEnvelope } from '../../core/message-envelope.js';
import type { ReplyDelivery } from '../reply-delivery.js';

/** A webhook request as a provider sees it: the raw body is kept for signature checks. */
export interface ProviderRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  query: Record<string, unknown>;
  rawBody: Buffer;
}

export interface ProviderResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** The fields of an envelope a provider fills; tenancy fields come from the resolved channel. */
export type InboundMessage = Pick<MessageEnvelope, 'id' | 'conversationId' | 'userId' | 'text'> &
  Partial<Pick<MessageEnvelope, 'attachments' | 'action' | 'raw' | 'timestamp' | 'meta'>> & {
    /** The user's language tag as the channel reports it (`en-US`); becomes the envelope's `locale`. */
    locale?: string;
  };

export interface IngressResult {
  /** Messages for the flow; empty for handshakes, ignored events and duplicates. */
  messages: InboundMessage[];
  /** When set, answered as is (handshake, ignored event) once messages are accepted. */
  response?: ProviderResponse;
  /** The caller asked to wait for the flow's replies. */
  wait?: boolean;
}

/**
 * A messaging channel: verifies and parses what the service sends (ingress) and delivers what the
 * flow replies (egress). Register one with `@GreenticProvider('id')` on an injectable class.
 */
export interface MessagingProvider {
  readonly id: string;
  /** Throws a GreenticError (status the service expects) for anything it refuses. */
  ingress(req: ProviderRequest, channel: ResolvedChannel): Promise<IngressResult> | IngressResult;
  /** `GET` on the webhook route, for services that verify by challenge. */
  challenge?(req: ProviderRequest, channel: ResolvedChannel): Promise<ProviderResponse>;
  /** Answer to a waiting webhook, from the flow's replies. */
  syncResponse?(replies: EgressMessage[], messages: InboundMessage[]): ProviderResponse;
  /**
   * Delivers replies to the service (rich replies mapped to its own format); throws an
   * EgressError, whose `retryable`/`retryAfterMs` tell the dispatcher whether and when to retry.
   * Each call to the service goes through `delivery.replies` (one call per reply) or
   * `delivery.whole` (one call for all), which apply the channel's delivery mode, record progress
   * per part and hand out the part's idempotency key; put that key in the service's own
   * de-duplication field where it has one.
   */
  send(msg: EgressMessage, channel: ResolvedChannel, delivery: ReplyDelivery): Promise<void>;
  /**
   * Whether `send` has anywhere to deliver this channel's replies (default: yes). A channel that
   * sends nothing gets no egress consumer, and its replies are not published on egress: a waiting
   * caller gets them on its replica's reply subject.
   */
  sends?(channel: ChannelBinding): boolean;
}

/**
 * A request the provider refuses because it cannot prove where it came from (bad signature,
 * stale timestamp, wrong token). 401 unless the service expects another status.
 */
export class ProviderAuthError extends GreenticError {
  constructor(provider: string, reason: string, httpStatus = 401, code = 'provider_unauthorized') {
    super(code, `${provider}: ${reason}`, httpStatus, { provider });
  }
}

/** A failed delivery to the service's API. */
export class EgressError extends GreenticError {
  constructor(
    provider: string,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
    upstreamStatus?: number,
  ) {
    super('egress_failed', `${provider}: ${message}`, 502, {
      provider,
      retryable,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...(upstreamStatus !== undefined ? { upstreamStatus } : {}),
    });
  }
}

export const GREENTIC_PROVIDER = 'greentic:provider';

/** Marks a class as a messaging provider; found at start-up with Nest's DiscoveryService. */
export const GreenticProvider = (id: string): ClassDecorator => SetMetadata(GREENTIC_PROVIDER, id);
