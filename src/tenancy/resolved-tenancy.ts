import { TenancyMismatchError } from '../common/errors.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import type { ResolvedChannel } from './bundle-registry.service.js';
import type { TenantBinding } from './bundle.types.js';
import type { TenantScope } from './tenant-scopes.service.js';

/**
 * What TenantGuard resolved for one hop (an HTTP request or a bus delivery), once: the tenant,
 * its bundle entry, the channel when the route or subject names one, and the tenant's service
 * scope (its durable instances of the tenant-bound services).
 */
export interface ResolvedTenancy {
  readonly tenant: TenantCtx;
  readonly binding: TenantBinding;
  /** Set when the route or subject names a team and a channel. */
  readonly channel?: ResolvedChannel;
  readonly scope: TenantScope;
}

/** A request or RPC context TenantGuard passed: the guard sets `tenancy` on it. */
export interface TenancyCarrier {
  tenancy?: ResolvedTenancy;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by TenantGuard on routes it guards. */
    tenancy?: ResolvedTenancy;
  }
}

/** The tenancy TenantGuard resolved; a handler reaching this without the guard is a wiring bug. */
export function tenancyOf(carrier: TenancyCarrier): ResolvedTenancy {
  const t = carrier.tenancy;
  if (!t) throw new Error('no tenancy resolved: the handler is not behind TenantGuard');
  return t;
}

/** Like tenancyOf, for handlers whose route or subject names a channel. */
export function channelOf(carrier: TenancyCarrier): ResolvedChannel {
  const c = tenancyOf(carrier).channel;
  if (!c) throw new Error('no channel resolved: the route behind TenantGuard names no channel');
  return c;
}

/** The tenancy a bus message's body states about itself (an envelope or an egress message). */
export interface TenancyClaim {
  readonly tenant: string;
  readonly env: string;
  readonly team: string;
  readonly channel: string;
}

/**
 * Refuses a bus message whose body, or its `greentic-tenant` header, names another tenant, env,
 * team or channel than its subject, which TenantGuard resolved: the subject is the authority, and
 * a message that claims otherwise is never run nor sent (TenancyMismatchError, a permanent error:
 * dead-lettered).
 */
export function assertClaimMatches(
  claim: TenancyClaim,
  headerTenant: string | undefined,
  channel: ResolvedChannel,
  subject: string,
): void {
  const t = channel.tenant;
  if (
    claim.tenant === t.tenantId &&
    claim.env === t.envId &&
    claim.team === (t.teamId ?? 'default') &&
    claim.channel === channel.channel.id &&
    (headerTenant === undefined || headerTenant === t.tenantId)
  )
    return;
  throw new TenancyMismatchError(
    `message claims ${claim.tenant}/${claim.env}/${claim.team}/${claim.channel}` +
      (headerTenant !== undefined ? ` (tenancy header '${headerTenant}')` : '') +
      ` on subject ${subject}`,
    { subject, tenant: t.tenantId },
  );
}
