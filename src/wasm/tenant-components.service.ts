import { Inject, Injectable, Scope } from '@nestjs/common';
import {
  COMPONENT_RUNTIME,
  type ComponentCall,
  type ComponentRuntime,
  type TenantComponentCalls,
} from '../core/component-runtime.js';
import { TENANT_CTX, type TenantCtx } from '../core/tenant-ctx.js';

/**
 * One tenant's component calls: the ComponentRuntime with the tenant fixed when the instance is
 * built (durable per tenant, through TenantScopes), so calls run in this tenant's instances only.
 * A plain class too: the CLI and specs build one per tenant with `new`.
 */
@Injectable({ scope: Scope.REQUEST, durable: true })
export class TenantComponents implements TenantComponentCalls {
  constructor(
    @Inject(TENANT_CTX) readonly tenant: TenantCtx,
    @Inject(COMPONENT_RUNTIME) private readonly runtime: ComponentRuntime,
  ) {}

  invoke(call: ComponentCall): Promise<unknown> {
    return this.runtime.invoke(this.tenant, call);
  }
}
