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
  /** Held while the connection is down: sends it once the client is back. */
  send: (() => void) | undefined;
}

/**
 * JetStream publishes whose PubAcks come back on one inbox subscription of this connection.
 * `js.publish` is a request: per publish it arms a timer and, once answered, cancels the finished
 * request by building an Error (stack included) nobody reads (nats-core 3.4); on the message path
 * that cost more than the publish itself (docs/production-messaging.md). Here one subscription
 * serves every publish and one timer sweeps the unanswered ones.
 *
 * Across a dropped connection, nothing waits for a PubAck that cannot come:
 * - a publish still waiting when the connection drops is rejected at once: its PubAck, if the
 *   server sent one, went to the dead connection. The caller's retry publishes again, and a copy
 *   that did land makes it a duplicate (`Nats-Msg-Id`);
 * - a publish made while the connection is down is held here and sent when the client is back
 *   (still within its timeout). Handed to the client, it would be lost: the client discards what
 *   it buffered at each reconnect attempt (nats-core 3.4 resets its outbound buffer per dial).
 * Before, both waited out the timeout, holding the message, and every later one of its session,
 * for up to that long after the server was back.
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
    const token = (this.next++).toString(36);
    return new Promise<StreamAck>((resolve, reject) => {
      const p: Pending = { resolve, reject, deadline: Date.now() + this.timeoutMs, send: undefined };
      this.pending.set(token, p);
      if (this.down) p.send = () => this.send(token, subject, payload, headers);
      else this.send(token, subject, payload, headers);
    });
  }

  private send(token: string, subject: string, payload: Uint8Array, headers: MsgHdrs): void {
    try {
      this.nc.publish(subject, payload, { reply: `${this.inbox}${token}`, headers });
    } catch (e) {
      const p = this.pending.get(token);
      this.pending.delete(token);
      p?.reject(e as Error);
    }
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

  /** Follows the connection (class comment): at a drop rejects what was sent, at the reconnect sends what was held. */
  private async watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.closed) return;
      if (s.type === 'disconnect') {
        this.down = true;
        for (const [token, p] of this.pending) {
          if (p.send) continue;
          this.pending.delete(token);
          p.reject(new Error('connection lost before the PubAck'));
        }
      } else if (s.type === 'reconnect') {
        this.down = false;
        for (const p of [...this.pending.values()]) {
          const send = p.send;
          p.send = undefined;
          send?.();
        }
      }
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
      p.reject(
        new Error(
          p.send
            ? `not connected to NATS within ${this.timeoutMs} ms`
            : `no PubAck within ${this.timeoutMs} ms`,
        ),
      );
    }
  }
}
