/**
 * Work in lanes by key: one task of a key runs at a time, in the order added; tasks of different
 * keys run concurrently. The partition owner runs a session's messages this way, so a session's
 * turns stay in order while the partition's other sessions proceed.
 */
export class KeyedLanes {
  private readonly tails = new Map<string, Promise<void>>();
  private running = 0;

  /** Tasks added and not yet finished, in all lanes. */
  get size(): number {
    return this.running;
  }

  /** Lanes with work queued or running. */
  get lanes(): number {
    return this.tails.size;
  }

  /**
   * Queues `task` behind the key's earlier ones. The returned promise settles with the task; a
   * task that throws does not stop its lane (the caller decides what a failure means).
   */
  add(key: string, task: () => Promise<void>): Promise<void> {
    this.running++;
    const prev = this.tails.get(key);
    const run = (prev ? prev.then(task) : task()).finally(() => {
      this.running--;
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    return run;
  }

  /** Resolves once every task added so far has finished. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
