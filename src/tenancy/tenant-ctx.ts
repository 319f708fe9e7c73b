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
  return `${ctx.tenantId}/${ctx.envId}/${ctx.teamId ?? '-'}`;
}

/** DI token for the request-scoped, durable-per-tenant TenantCtx provider. */
export const TENANT_CTX = Symbol('TENANT_CTX');

/** What TENANT_CTX holds under `GREENTIC_TENANCY_SCOPE=singleton`: no tenant is injected. */
export const UNSCOPED_TENANT: TenantCtx = Object.freeze({ tenantId: '*', envId: '*' });
