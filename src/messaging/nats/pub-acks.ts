import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';

/** What JetStream answered a publish with. */
export interface StreamAck {
  stream: string;
  seq: number;
  /** Dropped as a repeat of its `Nats-Msg-Id` inside the duplicate window. */
  duplicate: boolean;
}

interface Pending {
  resolve(ack: StreamAck): void;
  reject(e: Error): void;
  deadline: number;
}

/**
 * JetStream publishes whose PubAcks come back on one inbox subscription of this connection.
 * `js.publish` is a request: per publish it arms a timer and, once answered, cancels the finished
 * request by building an Error (stack included) nobody reads (nats-core 3.4); on the message path
 * that cost more than the publish itself (docs/production-messaging.md). Here one subscription
 * serves every publish and one timer sweeps the unanswered ones.
 *
 * While the connection is down, nothing waits for a PubAck that cannot come:
 * - a publish still waiting when the connection drops is rejected at once: its PubAck, if the
 *   server sent one, went to the dead connection;
 * - a publish made before the client is back is refused at once: the client discards what it
 *   buffered at each reconnect attempt (nats-core 3.4 resets its outbound buffer per dial), so it
 *   would never reach the server.
 * Either way the caller's retry publishes again once reconnected, and a copy that did land makes
 * the retry a duplicate (`Nats-Msg-Id`). Waiting out the timeout instead held the message, and
 * every later one of its session, for up to that long after the server was back.
 */
export class PubAcks {
  private readonly inbox = `${createInbox()}.`;
  private readonly pending = new Map<string, Pending>();
  private next = 0;
  private readonly sub: Subscription;
  private readonly sweep: NodeJS.Timeout;
  private closed = false;
  private down = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.sub = nc.subscribe(`${this.inbox}*`, {
      callback: (err, m) => {
        if (!err) this.settle(m.subject.slice(this.inbox.length), m);
      },
    });
    this.sweep = setInterval(() => this.expire(), Math.max(50, Math.min(1_000, timeoutMs / 4)));
    this.sweep.unref();
    void this.watchConnection();
  }

  /** Publishes to a stream subject; resolves with the PubAck, rejects on an error answer or none in time. */
  publish(subject: string, payload: Uint8Array, headers: MsgHdrs): Promise<StreamAck> {
    if (this.down) return Promise.reject(new Error('not connected to NATS (reconnecting)'));
    const token = (this.next++).toString(36);
    return new Promise<StreamAck>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline: Date.now() + this.timeoutMs });
      try {
        this.nc.publish(subject, payload, { reply: `${this.inbox}${token}`, headers });
      } catch (e) {
        this.pending.delete(token);
        reject(e as Error);
      }
    });
  }

  /** Publishes still waiting for their PubAck. */
  get size(): number {
    return this.pending.size;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweep);
    if (!this.sub.isClosed()) this.sub.unsubscribe();
    for (const p of this.pending.values()) p.reject(new Error('connection closed before the PubAck'));
    this.pending.clear();
  }

  /** Tracks the connection (see the class comment): what waits at a drop is rejected. */
  private async watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.closed) return;
      if (s.type === 'reconnect') this.down = false;
      if (s.type !== 'disconnect') continue;
      this.down = true;
      const lost = [...this.pending.values()];
      this.pending.clear();
      for (const p of lost) p.reject(new Error('connection lost before the PubAck'));
    }
  }

  private settle(token: string, m: Msg): void {
    const p = this.pending.get(token);
    if (!p) return;
    this.pending.delete(token);
    // The server's "no responders": no stream captures the subject, or JetStream is off.
    if (m.data.length === 0 && m.headers?.code === 503)
      return p.reject(
        new Error('no responders: no stream captures the subject, or JetStream is not enabled'),
      );
    let ack: { stream?: string; seq?: number; duplicate?: boolean; error?: { description?: string } };
    try {
      ack = m.json();
    } catch (e) {
      return p.reject(new Error(`unreadable PubAck: ${(e as Error).message}`));
    }
    if (ack.error) return p.reject(new Error(ack.error.description ?? 'JetStream refused the publish'));
    if (!ack.stream) return p.reject(new Error('invalid PubAck'));
    p.resolve({ stream: ack.stream, seq: ack.seq ?? 0, duplicate: ack.duplicate === true });
  }

  /** Deadlines grow with insertion order, so the sweep stops at the first one not yet due. */
  private expire(): void {
    const now = Date.now();
    for (const [token, p] of this.pending) {
      if (p.deadline > now) return;
      this.pending.delete(token);
      p.reject(new Error(`no PubAck within ${this.timeoutMs} ms`));
    }
  }
}
