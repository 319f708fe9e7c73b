/**
 * The seed's TenantCtx: who an operation runs for. It travels with every operation and is the
 * only thing a durable (per-tenant) provider may hold. Per-message facts live in MessageCtx.
 */
export interface TenantCtx {
  readonly tenantId: string;
  readonly envId: string;
  readonly teamId?: string;
}

/** Stable key for maps and caches scoped to one tenant/env/team. */
export function tenantKey(ctx: TenantCtx): string {
  // Every session operation asks; the registry hands out one frozen ctx per tenancy.
  let key = TENANT_KEYS.get(ctx);
  if (key === undefined) {
    key = `${ctx.tenantId}/${ctx.envId}/${ctx.teamId ?? '-'}`;
    if (Object.isFrozen(ctx)) TENANT_KEYS.set(ctx, key);
  }
  return key;
}

const TENANT_KEYS = new WeakMap<TenantCtx, string>();

/** DI token for the request-scoped, durable-per-tenant TenantCtx provider (see TenancyModule). */
export const TENANT_CTX = Symbol('TENANT_CTX');
