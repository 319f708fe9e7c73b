import { Injectable } from '@nestjs/common';
import { ExpiringMap } from '../common/expiring-map.js';
import { DELIVERY_MARK_TTL_MS, type DeliveryLedger, type DeliveryMark } from '../core/delivery-ledger.js';
import { tenantKey, type TenantCtx } from '../core/tenant-ctx.js';

/** Egress messages whose marks are kept at most (past that the oldest are forgotten first). */
const MAX_MESSAGES = 10_000;

/**
 * Delivery marks in this process (GREENTIC_SESSIONS=memory): enough for the in-process bus, whose
 * redeliveries come back to this process; with several replicas, marks must live in Redis.
 */
@Injectable()
export class MemoryDeliveryLedger implements DeliveryLedger {
  readonly durable = false;
  private readonly messages = new ExpiringMap<string, Map<number, DeliveryMark>>(
    MAX_MESSAGES,
    DELIVERY_MARK_TTL_MS,
  );

  async marks(tenant: TenantCtx, key: string): Promise<Map<number, DeliveryMark>> {
    return new Map(this.messages.get(`${tenantKey(tenant)}|${key}`));
  }

  async claim(tenant: TenantCtx, key: string, part: number): Promise<DeliveryMark | undefined> {
    const parts = this.parts(tenant, key);
    const found = parts.get(part);
    if (found === undefined) parts.set(part, 'sending');
    return found;
  }

  async markSent(tenant: TenantCtx, key: string, part: number): Promise<void> {
    this.parts(tenant, key).set(part, 'sent');
  }

  async release(tenant: TenantCtx, key: string, part: number): Promise<void> {
    const parts = this.messages.get(`${tenantKey(tenant)}|${key}`);
    if (parts?.get(part) === 'sending') parts.delete(part);
  }

  private parts(tenant: TenantCtx, key: string): Map<number, DeliveryMark> {
    const k = `${tenantKey(tenant)}|${key}`;
    let parts = this.messages.get(k);
    if (!parts) {
      parts = new Map();
      this.messages.set(k, parts);
    }
    return parts;
  }
}
