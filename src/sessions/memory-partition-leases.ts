import { Injectable } from '@nestjs/common';
import type { LeaseTick, OwnershipFence, PartitionLeaseStore } from '../core/partition-ownership.js';

/**
 * Leases in this process (sessions in memory): other replicas cannot see them, so each replica
 * owns every partition, which is right only for one replica (the bus warns otherwise).
 */
@Injectable()
export class MemoryPartitionLeases implements PartitionLeaseStore {
  readonly kind = 'memory';
  readonly shared = false;
  private readonly holders = new Map<string, string>();
  private readonly epochs = new Map<string, number>();
  private readonly members = new Map<string, Set<string>>();
  private readonly tails = new Map<string, { floor: number; n: number }>();

  tick(group: string, replica: string, held: readonly OwnershipFence[]): Promise<LeaseTick> {
    const set = this.members.get(group) ?? new Set<string>();
    set.add(replica);
    this.members.set(group, set);
    const lost = held.filter((f) => this.holders.get(f.lease) !== f.token);
    return Promise.resolve({ members: [...set].sort(), lost });
  }

  claim(group: string, partition: number, replica: string): Promise<OwnershipFence | null> {
    const lease = `${group}:p${partition}`;
    const holder = this.holders.get(lease);
    if (holder !== undefined && !holder.startsWith(`${replica}@`)) return Promise.resolve(null);
    const epoch = (this.epochs.get(lease) ?? 0) + 1;
    this.epochs.set(lease, epoch);
    const token = `${replica}@${epoch}`;
    this.holders.set(lease, token);
    return Promise.resolve({ partition, epoch, lease, token });
  }

  carry(group: string, partition: number, floor: number, delivered: number): Promise<number> {
    const key = `${group}:p${partition}`;
    if (delivered <= floor) {
      this.tails.delete(key);
      return Promise.resolve(0);
    }
    const cur = this.tails.get(key);
    const n = cur && cur.floor === floor ? cur.n + 1 : 1;
    this.tails.set(key, { floor, n });
    return Promise.resolve(n);
  }

  release(fence: OwnershipFence): Promise<void> {
    if (this.holders.get(fence.lease) === fence.token) this.holders.delete(fence.lease);
    return Promise.resolve();
  }

  leave(group: string, replica: string): Promise<void> {
    this.members.get(group)?.delete(replica);
    return Promise.resolve();
  }
}
