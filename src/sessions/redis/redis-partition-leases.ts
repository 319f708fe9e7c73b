import type { Redis } from 'ioredis';
import type { LeaseTick, OwnershipFence, PartitionLeaseStore } from '../../core/partition-ownership.js';
import { asStoreError } from './redis-errors.js';
import { OWNER_CARRY_LUA, OWNER_CLAIM_LUA, OWNER_TICK_LUA, RELEASE_LUA } from './redis-scripts.js';

interface OwnerScripts {
  gtOwnerTick(...keysThenArgs: (string | number)[]): Promise<[string[], number[]]>;
  gtOwnerClaim(
    lease: string,
    epoch: string,
    replica: string,
    ttlMs: number,
  ): Promise<[number, string, number?]>;
  gtOwnerRelease(lease: string, token: string): Promise<number>;
  gtOwnerCarry(tail: string, floor: number, delivered: number, ttlMs: number): Promise<number>;
}

/**
 * Partition leases in Redis, beside the sessions whose commits check them:
 *
 *   {prefix}:owners:{group}:members     sorted set, member → heartbeat deadline (Redis time)
 *   {prefix}:owners:{group}:p{N}        lease, `{replica}@{epoch}` with the lease TTL
 *   {prefix}:owners:{group}:p{N}:epoch  counter, incremented by every claim, never expires
 *   {prefix}:owners:{group}:p{N}:tail   `{floor}:{take-overs}` while a take-over found unfinished work
 *
 * A heartbeat is one script (member, lapsed members, extension of every held lease); a claim is
 * another. Nothing here is on a message's path.
 */
export class RedisPartitionLeases implements PartitionLeaseStore {
  readonly kind = 'redis';
  readonly shared = true;
  private readonly redis: Redis & OwnerScripts;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand('gtOwnerTick', { lua: OWNER_TICK_LUA });
    redis.defineCommand('gtOwnerClaim', { numberOfKeys: 2, lua: OWNER_CLAIM_LUA });
    redis.defineCommand('gtOwnerRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    redis.defineCommand('gtOwnerCarry', { numberOfKeys: 1, lua: OWNER_CARRY_LUA });
    this.redis = redis as Redis & OwnerScripts;
  }

  /** The key of a partition's lease (what a fence names). */
  leaseKey(group: string, partition: number): string {
    return `${this.prefix}:owners:${group}:p${partition}`;
  }

  async tick(
    group: string,
    replica: string,
    held: readonly OwnershipFence[],
    ttlMs: number,
  ): Promise<LeaseTick> {
    const keys = [`${this.prefix}:owners:${group}:members`, ...held.map((f) => f.lease)];
    // A script with a variable key count: numkeys goes first, as EVALSHA takes it.
    const [members, lost] = await this.call(() =>
      this.redis.gtOwnerTick(keys.length, ...keys, replica, ttlMs, ...held.map((f) => f.token)),
    );
    return { members: [...members].sort(), lost: lost.map((i) => held[i - 1]!) };
  }

  async claim(
    group: string,
    partition: number,
    replica: string,
    ttlMs: number,
  ): Promise<OwnershipFence | null> {
    const lease = this.leaseKey(group, partition);
    const [ok, token, epoch] = await this.call(() =>
      this.redis.gtOwnerClaim(lease, `${lease}:epoch`, replica, ttlMs),
    );
    if (ok !== 1) return null;
    return { partition, epoch: Number(epoch), lease, token };
  }

  carry(group: string, partition: number, floor: number, delivered: number): Promise<number> {
    return this.call(() =>
      // Kept a week: a stuck floor is a stuck partition, which someone will look at before then.
      this.redis.gtOwnerCarry(`${this.leaseKey(group, partition)}:tail`, floor, delivered, 7 * 24 * 3600_000),
    );
  }

  async release(fence: OwnershipFence): Promise<void> {
    await this.call(() => this.redis.gtOwnerRelease(fence.lease, fence.token));
  }

  async leave(group: string, replica: string): Promise<void> {
    await this.call(() => this.redis.zrem(`${this.prefix}:owners:${group}:members`, replica));
  }

  private async call<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw asStoreError(e);
    }
  }
}
