import type { Context } from '@opentelemetry/api';
import { BaseRpcContext } from '@nestjs/microservices';

type BusContextArgs = [
  subject: string,
  headers: Record<string, string>,
  deliveryCount: number,
  traceContext?: Context,
];

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
  /** The consume span's context, when the delivery is traced. */
  getTraceContext(): Context | undefined {
    return this.args[3];
  }
}
