/**
 * Sends queued in one event-loop turn go to NATS together, at the turn's end (setImmediate): the
 * client writes what it has buffered in one socket write, and on loopback each write costs the
 * sender the receiver's TCP work too. Without this, every webhook's ingress publish (each HTTP
 * request is its own I/O callback) and every ack was its own write.
 */
export class TurnBatch {
  private queue: (() => void)[] = [];
  private scheduled = false;

  /** Runs `send` at the end of this turn, with the others queued meanwhile. */
  add(send: () => void): void {
    this.queue.push(send);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** `send`'s result, once it ran with its turn's batch. */
  run<T>(send: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.add(() => {
        try {
          send().then(resolve, reject);
        } catch (e) {
          reject(e as Error);
        }
      }),
    );
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const q = this.queue;
    this.queue = [];
    for (const send of q) {
      // One failing send (the connection closed meanwhile) must not hold back the others. What it
      // lost is what a closed connection loses anyway: a fire-and-forget publish or an ack, whose
      // message is redelivered; `run` rejects its caller instead.
      try {
        send();
      } catch {
        continue;
      }
    }
  };
}
