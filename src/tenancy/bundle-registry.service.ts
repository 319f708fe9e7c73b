import { Injectable } from '@nestjs/common';
import { UnknownTenancyError } from '../common/errors.js';
import type { Bundle, ChannelBinding, TenantBinding } from './bundle.types.js';
import type { TenantCtx } from '../core/tenant-ctx.js';

/** What one webhook route or bus subject resolves to. */
export interface ResolvedChannel {
  tenant: TenantCtx;
  tenantBinding: TenantBinding;
  channel: ChannelBinding;
}

export interface TenancyCoordinates {
  tenant: string;
  env: string;
  team?: string;
  channel?: string;
}

/**
 * One frozen TenantCtx per tenant/env/team for the whole process, so durable DI sub-trees key on
 * identity even when several apps (replicas in one test process) hold their own registries. Keyed
 * by the parts joined with '/', which no id contains (bundle.schema.ts); no team is the empty part.
 */
const CTX_CACHE = new Map<string, TenantCtx>();

/**
 * Resolutions by channel binding: a binding belongs to one tenant/env/team of one bundle, and a
 * reloaded bundle brings new bindings, so an entry never goes stale (and goes with its binding).
 */
const RESOLVED_CACHE = new WeakMap<ChannelBinding, ResolvedChannel>();

/**
 * The bundle's tenants, envs, teams and channels, and the one place that decides whether a
 * tenancy exists. Unknown parts are refused, never defaulted.
 */
@Injectable()
export class BundleRegistry {
  constructor(private bundleValue: Bundle) {}

  get bundle(): Bundle {
    return this.bundleValue;
  }

  /** Swaps in a reloaded bundle (admin reload); callers holding a TenantCtx keep theirs. */
  replace(bundle: Bundle): void {
    this.bundleValue = bundle;
  }

  tenants(): TenantBinding[] {
    return [...this.bundleValue.tenants.values()];
  }

  tenant(id: string): TenantBinding {
    const t = this.bundleValue.tenants.get(id);
    if (!t) throw new UnknownTenancyError('tenant', id);
    return t;
  }

  /** Resolves tenant/env/team (team optional), throwing for the first unknown part. */
  resolveTenant(c: TenancyCoordinates): { ctx: TenantCtx; binding: TenantBinding } {
    const binding = this.tenant(c.tenant);
    const env = binding.envs.get(c.env);
    if (!env) throw new UnknownTenancyError('env', c.env);
    if (c.team !== undefined && !env.teams.has(c.team)) throw new UnknownTenancyError('team', c.team);
    return { ctx: this.ctxFor(c.tenant, c.env, c.team), binding };
  }

  resolveChannel(c: Required<TenancyCoordinates>): ResolvedChannel {
    // Every message resolves its channel twice (webhook and bus): one frozen answer per binding.
    const channel = this.bundleValue.tenants
      .get(c.tenant)
      ?.envs.get(c.env)
      ?.teams.get(c.team)
      ?.channels.get(c.channel);
    const hit = channel && RESOLVED_CACHE.get(channel);
    if (hit) return hit;
    const { ctx, binding } = this.resolveTenant(c);
    if (!channel) throw new UnknownTenancyError('channel', c.channel);
    const resolved: ResolvedChannel = Object.freeze({ tenant: ctx, tenantBinding: binding, channel });
    RESOLVED_CACHE.set(channel, resolved);
    return resolved;
  }

  private ctxFor(tenantId: string, envId: string, teamId: string | undefined): TenantCtx {
    // Once per tenancy and channel binding (resolveChannel remembers its answers), not per message.
    const key = `${tenantId}/${envId}/${teamId ?? ''}`;
    let ctx = CTX_CACHE.get(key);
    if (!ctx) {
      ctx = Object.freeze(teamId === undefined ? { tenantId, envId } : { tenantId, envId, teamId });
      CTX_CACHE.set(key, ctx);
    }
    return ctx;
  }
}
