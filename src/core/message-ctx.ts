import type { MessageEnvelope } from './message-envelope.js';
import type { TenantCtx } from './tenant-ctx.js';

/**
 * Per-message facts. Never stored in a durable provider: concurrent messages of one tenant
 * would share it. Built once per message (messageCtxOf) and passed explicitly down the message
 * path: MessageProcessor → FlowExecutorService → each component call.
 */
export interface MessageCtx {
  readonly tenant: TenantCtx;
  readonly channelId: string;
  readonly provider: string;
  readonly userId: string;
  readonly conversationId: string;
  readonly sessionKey: string;
  readonly messageId: string;
  /** The message's locale (`en`, `de-CH`), when the provider gave one. */
  readonly locale?: string;
}

/** The MessageCtx of an envelope of `tenant` (the tenant the hop resolved, not the envelope's claim). */
export function messageCtxOf(env: MessageEnvelope, tenant: TenantCtx): MessageCtx {
  const ctx: MessageCtx = {
    tenant,
    channelId: env.channel,
    provider: env.provider,
    userId: env.userId,
    conversationId: env.conversationId,
    sessionKey: env.sessionKey,
    messageId: env.id,
  };
  return env.locale === undefined ? ctx : { ...ctx, locale: env.locale };
}

/** `{tenant}:{provider}:{conversation}:{user}`, as the public runner builds it. */
export function buildSessionKey(
  tenantId: string,
  provider: string,
  conversationId: string,
  userId: string,
): string {
  return `${tenantId}:${provider}:${conversationId}:${userId}`;
}
