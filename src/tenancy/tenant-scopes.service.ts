import { Injectable, type Type } from '@nestjs/common';
import { ContextIdFactory, ModuleRef, type ContextId } from '@nestjs/core';
import type { TenantCtx } from '../core/tenant-ctx.js';

/**
 * One tenant's DI sub-tree: its instances of the request-scoped, durable providers (those that
 * inject TENANT_CTX). Each is resolved once through Nest, then handed out from a Map.
 */
export class TenantScope {
  private readonly instances = new Map<unknown, Promise<unknown>>();

  constructor(
    readonly tenant: TenantCtx,
    readonly contextId: ContextId,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** This tenant's instance of `type` (built on first use, the same one afterwards). */
  get<T>(type: Type<T>): Promise<T> {
    let hit = this.instances.get(type) as Promise<T> | undefined;
    if (!hit) {
      hit = this.moduleRef.resolve(type, this.contextId, { strict: false });
      this.instances.set(type, hit);
      // A failed build is not remembered: the next message tries again.
      hit.catch(() => this.instances.delete(type));
    }
    return hit;
  }
}

/**
 * Per-tenant DI with Nest's documented API: one ContextId per TenantCtx
 * (`ContextIdFactory.create()`), whose REQUEST is the TenantCtx itself
 * (`ModuleRef.registerRequestByContextId`), so TENANT_CTX and everything injecting it resolve
 * (`ModuleRef.resolve(type, contextId)`) to instances bound to that tenant for good. The registry
 * hands out one frozen TenantCtx per tenant/env/team, so the Map is keyed by identity and holds
 * only declared tenancies.
 */
@Injectable()
export class TenantScopes {
  private readonly scopes = new Map<TenantCtx, TenantScope>();

  constructor(private readonly moduleRef: ModuleRef) {}

  of(tenant: TenantCtx): TenantScope {
    let scope = this.scopes.get(tenant);
    if (!scope) {
      const contextId = ContextIdFactory.create();
      this.moduleRef.registerRequestByContextId(tenant, contextId);
      scope = new TenantScope(tenant, contextId, this.moduleRef);
      this.scopes.set(tenant, scope);
    }
    return scope;
  }

  /** Shorthand for `of(tenant).get(type)`. */
  get<T>(tenant: TenantCtx, type: Type<T>): Promise<T> {
    return this.of(tenant).get(type);
  }
}
