import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { fixturePath } from '../fixtures/fixture-paths.js';
import { writeTempBundle } from './temp-bundle.js';

/** Shared pieces of the multi-replica tests (NATS bus + Redis sessions). */

export const WEATHER_FLOW = readFileSync(
  path.resolve('examples/demo/packs/demo/flows/weather_bot.ygtc'),
  'utf8',
);

/**
 * Records the order its answers were run in: twenty questions, each answer stored by the flow
 * in session state (`in.aNN` of the parked snapshot), then all of them rendered in one reply.
 * A message run out of order lands under the wrong question; two run at once fail the
 * compare-and-set of the session.
 */
export const ORDER_PROBE_ANSWERS = 20;
export const ORDER_FLOW = `id: order_probe
type: messaging
nodes:
  ask:
    qa.process:
      welcome: "recording"
      questions:
${Array.from({ length: ORDER_PROBE_ANSWERS }, (_, i) => `        - { id: a${String(i + 1).padStart(2, '0')}, prompt: "next", answer_type: text, max_words: 3 }`).join('\n')}
    routing:
      - to: done
  done:
    templating.handlebars:
      text: "${Array.from({ length: ORDER_PROBE_ANSWERS }, (_, i) => `{{in.a${String(i + 1).padStart(2, '0')}}}`).join(',')}"
    routing:
      - out: true
`;

/** The demo weather bot on `web`, the order probe on `order`, and a channel that posts replies to `callbackUrl`. */
export function replicaBundle(callbackUrl?: string): string {
  return writeTempBundle({
    // Generous: these tests load the machine, and a slow component would read as a lost reply.
    limits: { component_deadline_ms: 15_000 },
    packs: [
      {
        id: 'demo',
        flows: { 'weather_bot.ygtc': WEATHER_FLOW },
        components: { weather_api: fixturePath('weather_api') },
      },
      { id: 'probe', flows: { 'order_probe.ygtc': ORDER_FLOW } },
    ],
    tenants: {
      demo: {
        packs: ['demo', 'probe'],
        channels: {
          web: { pack: 'demo', flow: 'weather_bot', session_ttl_seconds: 600 },
          order: { pack: 'probe', flow: 'order_probe', session_ttl_seconds: 600 },
          ...(callbackUrl
            ? {
                hook: {
                  pack: 'demo',
                  flow: 'weather_bot',
                  settings: { callback_url: callbackUrl },
                  session_ttl_seconds: 600,
                },
              }
            : {}),
        },
      },
      other: { packs: ['demo'], channels: { web: { pack: 'demo', flow: 'weather_bot' } } },
    },
  });
}

export interface PostResult {
  status: number;
  body: Record<string, unknown> & { replies?: { text: string }[]; status?: string; sessionKey?: string };
}

export async function post(
  base: string,
  p: string,
  body: unknown,
  query = '?wait=true',
): Promise<PostResult> {
  const res = await fetch(base + p + query, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, body: json as PostResult['body'] };
}

/**
 * Polls `cond` until it holds. `state`, when given, says what was seen instead: it is added to
 * the timeout's error, so a failure in CI tells why without a rerun.
 */
export function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
  state?: () => unknown,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = async () => {
      try {
        if (await cond()) return resolve();
      } catch {
        // not yet
      }
      if (Date.now() > deadline) {
        const seen = state ? `; last seen: ${JSON.stringify(state())}` : '';
        return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`));
      }
      setTimeout(() => void tick(), 25);
    };
    void tick();
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Observed<T> {
  seq: number;
  subject: string;
  data: T;
  headers: Record<string, string>;
}

/**
 * Reads everything a stream stores (from the start, no acks) through its own ephemeral consumer:
 * the stream's truth, e.g. how many replies egress really holds per message id. Created before
 * the load starts, it also keeps interest-retention streams from dropping what it has not read.
 */
export class StreamObserver<T = unknown> {
  readonly messages: Observed<T>[] = [];
  private readonly seqs = new Set<number>();
  private stopFn: () => Promise<void> = async () => undefined;

  private constructor(private readonly nc: NatsConnection) {}

  static async start<T>(url: string, stream: string, filter: string): Promise<StreamObserver<T>> {
    const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    const jsm = await jetstreamManager(nc);
    // Durable, so it survives a restart of the server it reads from; deleted by stop().
    const info = await jsm.consumers.add(stream, {
      durable_name: `observer_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      filter_subject: filter,
    });
    const consumer = await jetstream(nc).consumers.get(stream, info.name);
    const msgs = await consumer.consume({ max_messages: 256 });
    const obs = new StreamObserver<T>(nc);
    const loop = (async () => {
      for await (const m of msgs) {
        const headers: Record<string, string> = {};
        for (const k of m.headers?.keys() ?? []) headers[k] = m.headers!.get(k);
        let data: T;
        try {
          data = m.json<T>();
        } catch {
          data = { unparsable: m.string() } as T;
        }
        // A restarted server may replay what it delivered just before dying (consumer state is
        // flushed lazily): the stream's content is unique by sequence, so count it that way.
        if (obs.seqs.has(m.seq)) continue;
        obs.seqs.add(m.seq);
        obs.messages.push({ seq: m.seq, subject: m.subject, data, headers });
      }
    })();
    obs.stopFn = async () => {
      await msgs.close();
      await loop.catch(() => undefined);
      await jsm.consumers.delete(stream, info.name).catch(() => undefined);
      await nc.close();
    };
    return obs;
  }

  stop(): Promise<void> {
    return this.stopFn();
  }

  get connection(): NatsConnection {
    return this.nc;
  }
}

/** Counts per key: `{ key → n }`, to assert "exactly once" for every id. */
export function countBy<T>(items: T[], key: (t: T) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const it of items) out.set(key(it), (out.get(key(it)) ?? 0) + 1);
  return out;
}

/** The NATS bus entry of a runner's /health (details are included on loopback). */
export interface NatsBusHealth {
  kind: string;
  replica: string;
  /** Consumer group → the partitions this replica owns, with the epoch of its claim. */
  owned: Record<string, { partition: number; epoch: number }[]>;
  peakInflight: number;
  peakRunning: number;
  acked: number;
  retried: number;
}

/** Reads the NATS bus entry of the runner's /health at `url`. */
export async function natsBusHealth(url: string): Promise<NatsBusHealth> {
  const body = (await (await fetch(`${url}/health`)).json()) as unknown;
  const found = findNatsBus(body);
  if (!found) throw new Error(`no NATS bus entry in ${url}/health: ${JSON.stringify(body)}`);
  return found;
}

function findNatsBus(v: unknown): NatsBusHealth | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (o['kind'] === 'nats' && typeof o['owned'] === 'object') return o as unknown as NatsBusHealth;
  for (const child of Object.values(o)) {
    const f = findNatsBus(child);
    if (f) return f;
  }
  return undefined;
}
