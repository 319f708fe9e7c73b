/**
 * Partition ownership (docs/production-messaging.md, "Partitions and owners"). Ingress and egress
 * subjects carry a partition token from a stable hash of the session key; each partition of a
 * consumer group is owned by one replica at a time, through a lease with a monotonically increasing
 * epoch. The owner runs the partition's messages and caches its sessions; a write made under an
 * epoch that is no longer current is refused where it is stored, so a replica that stalled past its
 * lease (a long GC pause, SIGSTOP, a network partition) cannot overwrite what the next owner wrote.
 */

/** Proof of ownership a delivery carries to the session store's commit. */
export interface OwnershipFence {
  /** The consumer group's partition. */
  readonly partition: number;
  /** Incremented by every claim of the partition: a later owner always has a higher one. */
  readonly epoch: number;
  /** Where the lease lives (a store key); opaque outside the lease store. */
  readonly lease: string;
  /** The lease's value while this owner holds it; a commit checks it atomically with the write. */
  readonly token: string;
}

export interface LeaseTick {
  /** Live members of the group (this replica included), sorted. */
  members: string[];
  /** Of the fences given, those no longer held (expired or taken over): stop using them now. */
  lost: OwnershipFence[];
}

/**
 * Where leases live: Redis when sessions do (the commit checks the fence in the same script as the
 * compare-and-set), or this process (one replica: it owns everything).
 */
export interface PartitionLeaseStore {
  readonly kind: string;
  /** Whether other processes see these leases (false: this replica owns every partition). */
  readonly shared: boolean;
  /**
   * One heartbeat: marks `replica` alive in `group` for `ttlMs`, forgets members whose heartbeat
   * lapsed, extends the leases of `held` (reporting those that are no longer ours).
   */
  tick(group: string, replica: string, held: readonly OwnershipFence[], ttlMs: number): Promise<LeaseTick>;
  /** Takes a free (or lapsed) partition with a new epoch; null while another replica holds it. */
  claim(group: string, partition: number, replica: string, ttlMs: number): Promise<OwnershipFence | null>;
  /**
   * Deliveries the new owner's consumer cannot count: the previous consumer had delivered up to
   * stream sequence `delivered` and finished everything up to `floor`. Returns how many owners in a
   * row took the partition over with the floor stuck there (0 when nothing was unfinished), which
   * the new owner adds to the delivery count of that tail: a message that kills every replica it
   * runs on is dead-lettered after the delivery limit instead of moving from owner to owner.
   */
  carry(group: string, partition: number, floor: number, delivered: number): Promise<number>;
  /** Gives a partition back (only if still ours), so the next owner need not wait for the TTL. */
  release(fence: OwnershipFence): Promise<void>;
  /** Leaves the group (graceful stop): the others rebalance at their next heartbeat. */
  leave(group: string, replica: string): Promise<void>;
}

export const PARTITION_LEASES = Symbol('PARTITION_LEASES');

/**
 * The partitions `replica` should own among `members`: rendezvous (highest-random-weight) hashing,
 * so a member joining or leaving moves only the partitions it gains or loses, and each of n members
 * gets about 1/n of them.
 */
export function fairShare(members: readonly string[], replica: string, partitions: number): number[] {
  const out: number[] = [];
  if (!members.includes(replica)) return out;
  for (let p = 0; p < partitions; p++) {
    let best = '';
    let bestWeight = -1;
    for (const m of members) {
      const w = weight(m, p);
      if (w > bestWeight || (w === bestWeight && m < best)) {
        best = m;
        bestWeight = w;
      }
    }
    if (best === replica) out.push(p);
  }
  return out;
}

/** A 32-bit mix of (member, partition): FNV-1a over the member, then the partition, then murmur3's finalizer. */
function weight(member: string, partition: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < member.length; i++) {
    h ^= member.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= partition + 0x9e3779b9;
  h = Math.imul(h, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
