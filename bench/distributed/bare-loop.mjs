// The baseline: a bare JetStream worker with no framework. Pulls from an ingress stream, does one
// Redis GET and SET for the message's session, publishes the reply to an egress stream (waiting
// for the PubAck, with a Nats-Msg-Id), then acks. Messages are handled concurrently.
// argv: <nats url> <redis url> <stream prefix> <subject prefix>. Prints LISTENING ready.
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';

const [natsUrl, redisUrl, streamPrefix, sp] = process.argv.slice(2);
const nc = await connect({ servers: natsUrl });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
const redis = new Redis(redisUrl);
const stream = `${streamPrefix}_BARE_IN`;
await jsm.consumers.add(stream, {
  durable_name: 'bare',
  ack_policy: AckPolicy.Explicit,
  max_ack_pending: 1024,
});
const messages = await (await js.consumers.get(stream, 'bare')).consume({ max_messages: 256 });
process.stdout.write('LISTENING ready\n');
let cpu0 = process.cpuUsage();
process.on('SIGUSR2', () => (cpu0 = process.cpuUsage()));
process.on('SIGUSR1', () => {
  const c = process.cpuUsage(cpu0);
  process.stdout.write(`CPU_MS ${((c.user + c.system) / 1000).toFixed(1)}\n`);
});
process.on('SIGTERM', async () => {
  await messages.close();
  await nc.drain();
  redis.disconnect();
  process.exit(0);
});
const decoder = new TextDecoder();
for await (const m of messages) {
  void (async () => {
    const env = JSON.parse(decoder.decode(m.data));
    const key = `${sp}:bare:${env.sessionKey}`;
    const prev = await redis.get(key);
    await redis.set(key, JSON.stringify({ n: (prev ? JSON.parse(prev).n : 0) + 1 }), 'EX', 600);
    await js.publish(`${sp}.bare.out`, JSON.stringify({ inReplyTo: env.id, text: `echo ${env.text}` }), {
      msgID: `${env.id}:reply`,
    });
    m.ack();
  })().catch((e) => {
    process.stderr.write(`bare loop: ${e.message}\n`);
    m.nak(100);
  });
}
