/**
 * The pause before a message is retried in place after a dependency outage, cut short when the
 * NATS connection comes back. An attempt made while NATS is down waits for the reconnect for up
 * to the publish timeout (`PubAcks`); one that gave up just before it would otherwise sleep a
 * whole backoff step (up to `backoffMaxMs`, 30 s) after the server was back. The other outages
 * (Redis, a session lease) keep their backoff: nothing here wakes them early.
 */
export class OutagePause {
  /** The pauses running now; each leaves the set when it ends, so a long outage holds none. */
  private readonly sleeping = new Set<() => void>();

  /** The connection is back: every pause running now ends. */
  reconnected(): void {
    for (const wake of this.sleeping) wake();
  }

  /** Resolves after `ms`, or at the next reconnect if that comes first. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleeping.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeping.add(wake);
    });
  }

  /** Pauses running now. */
  get size(): number {
    return this.sleeping.size;
  }
}
