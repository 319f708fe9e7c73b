import { Inject, Injectable, Scope } from '@nestjs/common';
import { TENANT_CTX, type TenantCtx } from '../core/tenant-ctx.js';
import { SecretsService } from './secrets.service.js';

/**
 * One tenant's secrets: SecretsService with the tenant fixed when the instance is built (durable
 * per tenant, through TenantScopes). Allow-lists still apply per call; no other tenant is reachable.
 */
@Injectable({ scope: Scope.REQUEST, durable: true })
export class TenantSecrets {
  constructor(
    @Inject(TENANT_CTX) readonly tenant: TenantCtx,
    private readonly secrets: SecretsService,
  ) {}

  get(name: string, allowed?: readonly string[]): Promise<string | undefined> {
    return this.secrets.get(this.tenant, name, allowed);
  }

  require(name: string, allowed?: readonly string[]): Promise<string> {
    return this.secrets.require(this.tenant, name, allowed);
  }

  locate(name: string): { backend: string; name: string; where: string } {
    return this.secrets.locate(this.tenant, name);
  }
}
