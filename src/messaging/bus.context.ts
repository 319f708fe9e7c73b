import { BaseRpcContext } from '@nestjs/microservices';

type BusContextArgs = [subject: string, headers: Record<string, string>, deliveryCount: number];

/** RPC context of a bus delivery; TenantGuard reads the tenancy from its subject. */
export class BusContext extends BaseRpcContext<BusContextArgs> {
  getSubject(): string {
    return this.args[0];
  }
  getHeaders(): Record<string, string> {
    return this.args[1];
  }
  getDeliveryCount(): number {
    return this.args[2];
  }
}
