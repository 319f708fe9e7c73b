import type { TenantCtx } from './tenant-ctx.js';

/**
 * Per-message facts. Never stored in a durable provider: concurrent messages of one tenant
 * would share it. Passed explicitly down the message path (and held in CLS for logging).
 */
export interface MessageCtx {
  readonly tenant: TenantCtx;
  readonly channelId: string;
  readonly provider: string;
  readonly userId: string;
  readonly conversationId: string;
  readonly sessionKey: string;
  readonly messageId: string;
  readonly traceId?: string;
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
