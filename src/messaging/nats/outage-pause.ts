/**
 * The pause before a message is retried in place after a dependency outage, cut short when the
 * NATS connection comes back. An attempt made while NATS is down waits for the reconnect for up
 * to the publish timeout (`PubAcks`); one that gave up just before it would otherwise sleep a
 * whole backoff step (up to `backoffMaxMs`, 30 s) after the server was back. The other outages
 * (Redis, a session lease) keep their backoff: nothing here wakes them early.
 */
export class OutagePause {
  private wakeAll: () => void = () => undefined;
  private woken = this.next();

  /** The connection is back: every pause running now ends. */
  reconnected(): void {
    this.wakeAll();
    this.woken = this.next();
  }

  private next(): Promise<void> {
    return new Promise<void>((r) => {
      this.wakeAll = r;
    });
  }

  /** Resolves after `ms`, or at the next reconnect if that comes first. */
  wait(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    });
    return Promise.race([slept, this.woken]).finally(() => clearTimeout(timer));
  }
}
