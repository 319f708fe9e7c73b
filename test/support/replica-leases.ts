import type { PartitionLeaseStore } from '../../src/core/partition-ownership.js';
import { RedisSessionStore } from '../../src/sessions/redis/redis-session.store.js';
import { deleteRedisPrefix, SHARED_REDIS_URL, uniqueRedisPrefix } from './nats-redis-servers.js';

/**
 * Partition leases for NatsBus tests, in Redis as in production: the buses of one deployment (a
 * test) share a key prefix, each with its own connection and replica id, as separate processes
 * would. `close()` closes the connections and deletes the keys.
 */
export class ReplicaLeases {
  private readonly prefixes = new Map<string, string>();
  private connections: RedisSessionStore[] = [];
  private replicas = 0;

  /** A new replica of `deployment`: its id and its own connection to the deployment's leases. */
  async replica(deployment: string): Promise<{ replica: string; leases: PartitionLeaseStore }> {
    let prefix = this.prefixes.get(deployment);
    if (!prefix) this.prefixes.set(deployment, (prefix = uniqueRedisPrefix('leases')));
    const store = await RedisSessionStore.connect({ url: SHARED_REDIS_URL, prefix, leaseMs: 5_000 });
    this.connections.push(store);
    return { replica: `replica-${++this.replicas}`, leases: store.leases() };
  }

  async close(): Promise<void> {
    await Promise.all(this.connections.map((c) => c.close()));
    this.connections = [];
    for (const p of this.prefixes.values()) await deleteRedisPrefix(SHARED_REDIS_URL, p);
    this.prefixes.clear();
  }
}
