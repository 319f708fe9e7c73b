import { jetstreamManager } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deleteStreams,
  requireNats,
  SHARED_NATS_URL,
  TestNatsServer,
  uniqueNatsNamespace,
} from '../../../test/support/nats-redis-servers.js';
import { PubAcks } from './pub-acks.js';

const ns = uniqueNatsNamespace('pubacks');
const SUBJECT = `${ns.GREENTIC_NATS_SUBJECT_PREFIX}.in`;
let nc: NatsConnection;

beforeAll(async () => {
  await requireNats();
  nc = await connect({ servers: SHARED_NATS_URL });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: `${ns.GREENTIC_NATS_STREAM_PREFIX}_IN`, subjects: [SUBJECT] });
});

afterAll(async () => {
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX);
  await nc?.close();
});

const withId = (id: string) => {
  const h = natsHeaders();
  h.set('Nats-Msg-Id', id);
  return h;
};

describe('PubAcks', () => {
  it("resolves each publish with its stream's PubAck, a repeated Nats-Msg-Id as a duplicate", async () => {
    const acks = new PubAcks(nc, 2_000);
    const data = new TextEncoder().encode('{}');
    const [a, b] = await Promise.all([
      acks.publish(SUBJECT, data, withId('a')),
      acks.publish(SUBJECT, data, withId('b')),
    ]);
    expect(a).toMatchObject({ stream: `${ns.GREENTIC_NATS_STREAM_PREFIX}_IN`, duplicate: false });
    expect(b.seq).toBe(a.seq + 1);
    expect(await acks.publish(SUBJECT, data, withId('a'))).toEqual({ ...a, duplicate: true });
    expect(acks.size).toBe(0);
    acks.close();
  });

  it('rejects a publish no stream captures, and one nobody answers in time', async () => {
    const acks = new PubAcks(nc, 300);
    const data = new TextEncoder().encode('{}');
    await expect(acks.publish(`${SUBJECT}.nowhere`, data, natsHeaders())).rejects.toThrow(/no responders/);
    // A core subscriber takes the request and never answers: no PubAck.
    const silent = nc.subscribe(`${SUBJECT}.silent`, { callback: () => undefined });
    await nc.flush();
    const t0 = Date.now();
    await expect(acks.publish(`${SUBJECT}.silent`, data, natsHeaders())).rejects.toThrow(
      /no PubAck within 300 ms/,
    );
    expect(Date.now() - t0).toBeLessThan(1_000);
    silent.unsubscribe();
    acks.close();
  });

  it('rejects at once what waits when the connection drops, holds what is published until the client is back, then sends it', async () => {
    const server = await TestNatsServer.start();
    const own = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    try {
      const jsm = await jetstreamManager(own);
      await jsm.streams.add({ name: 'PUBACKS_DROP', subjects: ['drop.in'] });
      const acks = new PubAcks(own, 30_000);
      const brief = new PubAcks(own, 300);
      const data = new TextEncoder().encode('{}');
      // A core subscriber takes this one and never answers: it waits, as a publish written to a
      // connection that dies before its PubAck does.
      own.subscribe('drop.silent', { callback: () => undefined });
      await own.flush();
      const waiting = expect(acks.publish('drop.silent', data, natsHeaders())).rejects.toThrow(
        /connection lost before the PubAck/,
      );
      const t0 = Date.now();
      await server.down('SIGKILL');
      await waiting;
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(acks.size).toBe(0);
      // Published while the server is down: held (the client would discard it at its next
      // reconnect attempt), sent once the client is back; one whose time runs out first fails.
      const held = acks.publish('drop.in', data, withId('while-down'));
      await expect(brief.publish('drop.in', data, withId('too-late'))).rejects.toThrow(
        /not connected to NATS within 300 ms/,
      );
      expect(acks.size).toBe(1);
      await server.up();
      await expect(held).resolves.toMatchObject({ stream: 'PUBACKS_DROP', seq: 1, duplicate: false });
      await expect(acks.publish('drop.in', data, withId('after'))).resolves.toMatchObject({
        stream: 'PUBACKS_DROP',
        seq: 2,
        duplicate: false,
      });
      acks.close();
      brief.close();
    } finally {
      await own.close();
      await server.stop();
    }
  }, 30_000);
});
