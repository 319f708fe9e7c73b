/**
 * Who runs which tick of a timer, across replicas. One slot per timer: a replica claims a tick
 * (a lease with a fencing token), renews the lease while the tick runs, and confirms it when
 * done. Ticks of one timer run one at a time and in order; a tick whose claimant vanished (its
 * lease ran out unconfirmed) is reported as abandoned so the next replica takes it over.
 */
export type Claim =
  /** Run it; present `fence` when renewing and confirming. */
  | { status: 'won'; fence: number }
  /** Already run, or superseded by a later tick: nothing to do. */
  | { status: 'done' }
  /** Another replica holds a lease on `tick` (this one or an earlier one): ask again in `retryInMs`. */
  | { status: 'busy'; tick: number; retryInMs: number }
  /** `tick` was claimed but never confirmed and its lease has run out: run it first. */
  | { status: 'abandoned'; tick: number };

export interface TickLedger {
  readonly kind: string;
  claim(timer: string, tick: number, owner: string, leaseMs: number): Promise<Claim>;
  /** False when the claim was taken over (fenced out). */
  renew(timer: string, tick: number, fence: number, leaseMs: number): Promise<boolean>;
  /** Marks the tick run; false when fenced out (another replica took it over). */
  confirm(timer: string, tick: number, fence: number): Promise<boolean>;
  /** The latest confirmed tick, for catch-up after every replica was down. */
  lastDone(timer: string): Promise<number | undefined>;
  close(): Promise<void>;
}

export const TICK_LEDGER = Symbol('TICK_LEDGER');

interface Slot {
  done: number;
  cur?: number;
  until: number;
  fence: number;
}

/** The ledger of one process: the embedded default, and a model of the Redis script's rules. */
export class MemoryTickLedger implements TickLedger {
  readonly kind = 'memory';
  private readonly slots = new Map<string, Slot>();

  constructor(private readonly now: () => number = Date.now) {}

  private slot(timer: string): Slot {
    let s = this.slots.get(timer);
    if (!s) this.slots.set(timer, (s = { done: -1, until: 0, fence: 0 }));
    return s;
  }

  async claim(timer: string, tick: number, _owner: string, leaseMs: number): Promise<Claim> {
    const s = this.slot(timer);
    const now = this.now();
    if (tick <= s.done) return { status: 'done' };
    if (s.cur !== undefined) {
      if (s.cur > tick) return { status: 'done' };
      if (s.until > now) return { status: 'busy', tick: s.cur, retryInMs: s.until - now };
      if (s.cur < tick) return { status: 'abandoned', tick: s.cur };
    }
    s.fence++;
    s.cur = tick;
    s.until = now + leaseMs;
    return { status: 'won', fence: s.fence };
  }

  async renew(timer: string, tick: number, fence: number, leaseMs: number): Promise<boolean> {
    const s = this.slot(timer);
    if (s.fence !== fence || s.cur !== tick) return false;
    s.until = this.now() + leaseMs;
    return true;
  }

  async confirm(timer: string, tick: number, fence: number): Promise<boolean> {
    const s = this.slot(timer);
    if (s.fence !== fence || s.cur !== tick) return false;
    s.done = Math.max(s.done, tick);
    s.cur = undefined;
    s.until = 0;
    return true;
  }

  async lastDone(timer: string): Promise<number | undefined> {
    const d = this.slots.get(timer)?.done;
    return d === undefined || d < 0 ? undefined : d;
  }

  async close(): Promise<void> {
    this.slots.clear();
  }
}
