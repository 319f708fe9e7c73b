import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { stringify } from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startApp, type RunnerApp } from '../src/bootstrap.js';
import { MESSAGE_BUS, type MessageBus } from '../src/core/message-bus.js';
import { type EgressMessage } from '../src/core/message-envelope.js';
import { egressSubject } from '../src/core/subjects.js';
import { FakeServer } from './support/fakes/fake-server.js';
import { until } from './support/fakes/provider-harness.js';
import { SlackApiFake } from './support/fakes/slack-api.fake.js';
import {
  deleteStreams,
  natsAppConfig,
  requireNats,
  SHARED_NATS_URL,
  uniqueNatsNamespace,
} from './support/nats-redis-servers.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * Egress on the real JetStream bus with two providers: the generic webhook (replies POSTed to a
 * callback) and Slack (a local Slack Web API that is scripted to answer 429 and 5xx). Each provider
 * has its own consumers, so Slack failing never holds up a webhook reply, even with a single
 * partition (where one shared consumer would serialise every reply behind Slack's retries); each
 * session's replies still go out in order, and Slack's are dead-lettered after max attempts.
 */

const BOT_TOKEN = 'xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy';
const ns = uniqueNatsNamespace('egressprov');
const ECHO = 'id: echo\ntype: messaging\nnodes:\n  say:\n    reply: "echo {{message.text}}"\n';

let app: RunnerApp;
let bus: MessageBus;
let slack: SlackApiFake;
let callback: FakeServer;
/** Webhook callbacks received: `{sessionKey} {reply text}` with the arrival time. */
let calls: { key: string; at: number }[] = [];
/** Webhook callbacks received at tenant globex's URL: their session keys. */
const globexCalls: string[] = [];

function reply(id: string, channel: 'web' | 'slack', session: string, texts: string[]): EgressMessage {
  return {
    id: `${id}:reply`,
    inReplyTo: id,
    tenant: 'acme',
    env: 'dev',
    team: 'default',
    channel,
    provider: channel === 'web' ? 'webhook' : 'slack',
    conversationId: session,
    userId: session,
    sessionKey: `acme:${channel}:${session}:${session}`,
    replies: texts.map((text) => ({ text })),
    status: 'completed',
    timestamp: new Date().toISOString(),
  };
}

const publish = (m: EgressMessage) =>
  bus.publish(egressSubject(m.env, m.tenant, m.team, m.channel), m, { msgId: m.id });

const slackPosts = () => slack.posts().map((p) => `${p.args['channel']} ${p.args['text']}`);

beforeAll(async () => {
  await requireNats();
  slack = await new SlackApiFake(BOT_TOKEN).start();
  callback = await new FakeServer((req) => {
    const body = JSON.parse(req.body.toString('utf8')) as { sessionKey: string; replies: { text: string }[] };
    if (req.url !== '/cb') {
      globexCalls.push(body.sessionKey);
      return { status: 200, body: { ok: true } };
    }
    for (const r of body.replies) calls.push({ key: `${body.sessionKey} ${r.text}`, at: Date.now() });
    return { status: 200, body: { ok: true } };
  }).listen();
  const bundle = writeTempBundle({
    packs: [{ id: 'p', flows: { 'echo.ygtc': ECHO } }],
    tenants: {
      acme: {
        packs: ['p'],
        secrets: { backend: 'file', options: { path: 'secrets.yaml' } },
        channels: {
          web: {
            provider: 'webhook',
            pack: 'p',
            flow: 'echo',
            settings: { callback_url: `http://127.0.0.1:${callback.port}/cb` },
          },
          slack: {
            provider: 'slack',
            pack: 'p',
            flow: 'echo',
            settings: { api_base_url: slack.url },
            secret_refs: { signing_secret: 'slack_signing_secret', bot_token: 'slack_bot_token' },
          },
        },
      },
      // A second tenant with a channel of the same id and provider: its replies go to its own URL.
      globex: {
        packs: ['p'],
        channels: {
          web: {
            provider: 'webhook',
            pack: 'p',
            flow: 'echo',
            settings: { callback_url: `http://127.0.0.1:${callback.port}/globex` },
          },
        },
      },
    },
  });
  writeFileSync(
    path.join(path.dirname(bundle), 'secrets.yaml'),
    stringify({ 'acme/dev/slack_bot_token': BOT_TOKEN, 'acme/dev/slack_signing_secret': 'sig' }),
  );
  ({ app } = await startApp({
    config: natsAppConfig(bundle, ns, {
      // One partition: with a single shared egress consumer every reply would queue behind Slack's.
      GREENTIC_NATS_PARTITIONS: 1,
      GREENTIC_COORDINATION: 'memory',
    }),
  }));
  bus = app.get<MessageBus>(MESSAGE_BUS);
});

beforeEach(() => {
  calls = [];
});

afterAll(async () => {
  await app?.close();
  await slack?.close();
  await callback?.close();
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX).catch(() => undefined);
});

describe('egress: a consumer per provider', () => {
  it('creates durable consumers named after each provider', async () => {
    expect(bus.kind).toBe('nats');
    const nc = await connect({ servers: SHARED_NATS_URL });
    try {
      const jsm = await jetstreamManager(nc);
      const names: string[] = [];
      for await (const c of jsm.consumers.list(`${ns.GREENTIC_NATS_STREAM_PREFIX}_EGRESS`))
        names.push(c.name);
      expect(names.filter((n) => n.startsWith('egress-slack_'))).toHaveLength(2);
      expect(names.filter((n) => n.startsWith('egress-webhook_'))).toHaveLength(2);
      expect(names.filter((n) => !/^egress-(slack|webhook)_/.test(n))).toEqual([]);
    } finally {
      await nc.close();
    }
  });

  it("delivers webhook replies at once, in session order, while Slack answers 429 and 5xx; Slack's follow in order", async () => {
    // Slack refuses the first four calls: 429 with Retry-After (seconds), then 503.
    slack.script.push(
      { status: 429, headers: { 'retry-after': '1' }, body: { ok: false, error: 'ratelimited' } },
      { status: 429, headers: { 'retry-after': '1' }, body: { ok: false, error: 'ratelimited' } },
      { status: 503, body: 'unavailable' },
      { status: 503, body: 'unavailable' },
    );
    await publish(reply('s1', 'slack', 'DU1', ['s1-a', 's1-b']));
    await publish(reply('s2', 'slack', 'DU1', ['s2']));
    await until(() => slack.attempts().length >= 1, 'first Slack attempt');

    const t0 = Date.now();
    for (let i = 1; i <= 4; i++)
      for (const s of ['alice', 'bob']) await publish(reply(`w-${s}-${i}`, 'web', s, [`${s}-${i}`]));
    await until(() => calls.length === 8, 'eight webhook replies');
    const elapsed = Date.now() - t0;
    expect(slack.posts()).toHaveLength(0);
    expect(elapsed).toBeLessThan(2_000);
    for (const s of ['alice', 'bob'])
      expect(calls.filter((c) => c.key.includes(`:${s}:`)).map((c) => c.key.split(' ')[1])).toEqual([
        `${s}-1`,
        `${s}-2`,
        `${s}-3`,
        `${s}-4`,
      ]);

    await until(() => slack.posts().length === 3, "Slack's three replies", 30_000);
    expect(slackPosts()).toEqual(['DU1 s1-a', 'DU1 s1-b', 'DU1 s2']);
    expect(slack.attempts().length).toBe(7);
  }, 40_000);

  it('dead-letters a Slack reply after max attempts; webhook replies are unaffected meanwhile', async () => {
    type DeadLetter = { subject: string; deliveries?: number; data: EgressMessage };
    const dead: DeadLetter[] = [];
    const sub = await bus.subscribe<DeadLetter>(
      'greentic.messaging.dlq.>',
      async (m) => void dead.push(m.data),
    );
    try {
      for (let i = 0; i < 5; i++) slack.script.push({ status: 502, body: 'bad gateway' });
      const before = slack.attempts().length;
      await publish(reply('dead-1', 'slack', 'DU2', ['never']));
      await until(() => slack.attempts().length > before, 'a Slack attempt');
      await publish(reply('w-carol-1', 'web', 'carol', ['carol-1']));
      await until(() => calls.length === 1, 'the webhook reply', 2_000);
      // Slack's reply is still being retried: the webhook's did not wait for it.
      expect(dead).toEqual([]);
      await until(() => dead.length === 1, 'the dead letter', 20_000);
      expect(dead[0]).toMatchObject({
        subject: egressSubject('dev', 'acme', 'default', 'slack'),
        deliveries: 5,
        data: { inReplyTo: 'dead-1' },
      });
      expect(slack.attempts().length - before).toBe(5);
      expect(slackPosts()).not.toContain('DU2 never');
    } finally {
      await sub.unsubscribe();
    }
  }, 30_000);
});

describe('egress: the subject is the authority on tenancy', () => {
  it("refuses and dead-letters a reply on tenant acme's subject that claims tenant globex: no callback gets it", async () => {
    type DeadLetter = { subject: string; error: { code: string }; data: EgressMessage };
    const dead: DeadLetter[] = [];
    const sub = await bus.subscribe<DeadLetter>(
      'greentic.messaging.dlq.>',
      async (m) => void dead.push(m.data),
    );
    try {
      const acmeSubject = egressSubject('dev', 'acme', 'default', 'web');
      // The body names globex's channel; the subject is acme's.
      const forged = { ...reply('forged-egress', 'web', 'mallory', ['leak']), tenant: 'globex' };
      forged.sessionKey = 'globex:web:mallory:mallory';
      await bus.publish(acmeSubject, forged, { msgId: forged.id });
      // The same claim made in the tenancy header instead.
      const viaHeader = reply('forged-egress-header', 'web', 'mallory', ['leak']);
      await bus.publish(acmeSubject, viaHeader, {
        msgId: viaHeader.id,
        headers: { 'greentic-tenant': 'globex' },
      });
      await until(() => dead.length === 2, 'both forged replies dead-lettered', 10_000);
      expect(dead.map((d) => [d.subject, d.error.code, d.data.inReplyTo]).sort()).toEqual([
        [acmeSubject, 'tenancy_mismatch', 'forged-egress'],
        [acmeSubject, 'tenancy_mismatch', 'forged-egress-header'],
      ]);
      // A genuine reply of globex's still reaches globex's URL, and acme's URL saw none of them.
      await bus.publish(egressSubject('dev', 'globex', 'default', 'web'), {
        ...reply('globex-1', 'web', 'gina', ['hello']),
        tenant: 'globex',
        sessionKey: 'globex:web:gina:gina',
      });
      await until(() => globexCalls.length === 1, "globex's own reply", 5_000);
      expect(globexCalls).toEqual(['globex:web:gina:gina']);
      expect(calls).toEqual([]);
    } finally {
      await sub.unsubscribe();
    }
  }, 20_000);
});
