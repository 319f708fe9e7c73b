import { BaseRpcContext } from '@nestjs/microservices';
import type { OwnershipFence } from '../core/partition-ownership.js';
import type { ResolvedTenancy, TenancyCarrier } from '../tenancy/resolved-tenancy.js';

type BusContextArgs = [
  subject: string,
  headers: Record<string, string>,
  deliveryCount: number,
  fence?: OwnershipFence,
  pastLimit?: boolean,
];

/** RPC context of a bus delivery; TenantGuard reads the tenancy from its subject. */
export class BusContext extends BaseRpcContext<BusContextArgs> implements TenancyCarrier {
  /** Set by TenantGuard: the delivery's tenancy, resolved once. */
  tenancy?: ResolvedTenancy;

  getSubject(): string {
    return this.args[0];
  }
  getHeaders(): Record<string, string> {
    return this.args[1];
  }
  getDeliveryCount(): number {
    return this.args[2];
  }
  /** The partition ownership this delivery runs under (NATS bus with partition owners). */
  getFence(): OwnershipFence | undefined {
    return this.args[3];
  }
  /** Delivered past the subscription's limit (BusMessage.pastLimit): only finished work is acknowledged. */
  isPastLimit(): boolean {
    return this.args[4] === true;
  }
}
