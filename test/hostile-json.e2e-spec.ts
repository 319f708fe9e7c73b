import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { slackSignature } from '../src/messaging/providers/slack/slack-signature.js';
import { hmacSha256 } from '../src/messaging/providers/provider-support.js';
import { OMITTED_ACTIVITY_EVENT } from '../src/messaging/providers/webchat/activity-set-json.js';
import { channelKey, DirectLineService } from '../src/messaging/providers/webchat/directline.service.js';
import type { Activity, ActivitySet } from '../src/messaging/providers/webchat/directline.types.js';
import { WebChatChannels } from '../src/messaging/providers/webchat/webchat-channels.js';
import {
  everyProviderChannel,
  QUESTION,
  startProviderApp,
  until,
  WELCOME,
  type ProviderApp,
} from './support/fakes/provider-harness.js';
import { SlackApiFake } from './support/fakes/slack-api.fake.js';
import { TeamsApiFake } from './support/fakes/teams-api.fake.js';
import { TelegramApiFake } from './support/fakes/telegram-api.fake.js';
import { WhatsAppApiFake } from './support/fakes/whatsapp-api.fake.js';
import {
  deleteRedisPrefix,
  deleteStreams,
  requireNats,
  requireRedis,
  SHARED_NATS_URL,
  SHARED_REDIS_URL,
  uniqueNatsNamespace,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';

/**
 * Hostile JSON (issue #17): a 120,000-deep array — the shape that overflowed the stack in capRaw,
 * poisoned a Direct Line conversation for good and answered 500 — on every provider route, with
 * valid signatures, on the production wiring (JetStream bus, Redis sessions). Each is refused with
 * 400 `payload_too_deep` before anything is stored or published, and the same conversation goes
 * on afterwards.
 */

const DEPTH = 120_000;
const DEEP = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
/** A real provider payload with the deep array in one of its fields. */
const withDeep = (payload: unknown): string => JSON.stringify(payload).replace('"<deep>"', DEEP);

const SLACK_SIGNING = '8f742231b10e8888abcd99yyyzzz85a5';
const SLACK_BOT = 'xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy';
const TEAMS_APP_ID = '8e0b0c2a-1111-4c6e-9d3b-5a7c3e1f0a11';
const TEAMS_PASSWORD = 'bot-framework-client-secret';
const TG_SECRET = 'Tg_secret-token_0123456789';
const TG_BOT = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const WA_SECRET = 'c0ffee5ecret0fthewhatsappapp';
const WA_TOKEN = 'EAAJB2x8ZAx4cBAFake';
const WA_PHONE = '106540352242922';
const DL_SECRET = 'dl-secret-for-acme-hostile-0123456789';
const DL = '/webchat/acme/dev/default/webchat/v3/directline';

const fixture = (p: string) =>
  JSON.parse(readFileSync(`test/fixtures/providers/${p}`, 'utf8')) as Record<string, unknown>;

let h: ProviderApp;
let slack: SlackApiFake;
let bf: TeamsApiFake;
let tg: TelegramApiFake;
let wa: WhatsAppApiFake;
const ns = uniqueNatsNamespace('hostile');
const redisPrefix = uniqueRedisPrefix('hostile');

async function post(path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(h.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
}

/** The refusal every hostile body gets, logged as a refusal with its tenant. */
function expectTooDeep(r: { status: number; body: Record<string, unknown> }, path: string): void {
  expect(r.status, path).toBe(400);
  expect(r.body['error'], path).toMatchObject({ code: 'payload_too_deep', maxDepth: 64 });
  expect(
    h.warnings().some((w) => w.obj['path'] === path.split('?')[0] && w.obj['code'] === 'payload_too_deep'),
    path,
  ).toBe(true);
}

beforeAll(async () => {
  await requireNats();
  await requireRedis();
  slack = await new SlackApiFake(SLACK_BOT).start();
  bf = await new TeamsApiFake(TEAMS_APP_ID, TEAMS_PASSWORD).start();
  tg = await new TelegramApiFake(TG_BOT).start();
  wa = await new WhatsAppApiFake(WA_TOKEN, WA_PHONE).start();
  h = await startProviderApp({
    ...everyProviderChannel(
      { slack, teams: bf, telegram: tg, whatsapp: wa },
      {
        slackSigning: SLACK_SIGNING,
        telegramWebhook: TG_SECRET,
        whatsappAppSecret: WA_SECRET,
        directLine: DL_SECRET,
      },
    ),
    config: {
      GREENTIC_BUS: 'nats',
      GREENTIC_SESSIONS: 'redis',
      NATS_URL: SHARED_NATS_URL,
      REDIS_URL: SHARED_REDIS_URL,
      GREENTIC_REDIS_PREFIX: redisPrefix,
      GREENTIC_NATS_STORAGE: 'memory',
      GREENTIC_NATS_BACKOFF_MS: 100,
      GREENTIC_WEBCHAT_DEFAULT_CHANNEL: 'acme/dev/default/webchat',
      ...ns,
    },
  });
});

afterAll(async () => {
  await h?.close();
  await Promise.all([slack?.close(), bf?.close(), tg?.close(), wa?.close()]);
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX).catch(() => undefined);
  await deleteRedisPrefix(SHARED_REDIS_URL, redisPrefix).catch(() => undefined);
});

describe('hostile JSON on the provider webhook routes', () => {
  it('webhook: 400 payload_too_deep (and payload_too_many_keys), then the same user is answered', async () => {
    const path = '/webhooks/webhook/acme/dev/default/web?wait=true';
    const before = h.accepted.mock.calls.length;
    expectTooDeep(await post(path, withDeep({ userId: 'hook-u', text: 'hi', meta: '<deep>' })), path);
    // Sent as text/plain it is still the provider's to parse, and still refused.
    expectTooDeep(
      await post(path, withDeep({ userId: 'hook-u', text: 'hi', meta: '<deep>' }), {
        'content-type': 'text/plain',
      }),
      path,
    );
    const wide = JSON.stringify({
      userId: 'hook-u',
      text: 'hi',
      meta: Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, 0])),
    });
    const tooWide = await post(path, wide);
    expect(tooWide.status).toBe(400);
    expect(tooWide.body['error']).toMatchObject({ code: 'payload_too_many_keys', maxKeys: 10_000 });
    expect(h.accepted.mock.calls.length).toBe(before);

    const ok = await post(path, JSON.stringify({ userId: 'hook-u', text: 'hi' }));
    expect(ok.status).toBe(200);
    expect((ok.body['replies'] as { text: string }[]).map((r) => r.text)).toEqual([WELCOME, QUESTION]);
  });

  it('slack: a signed Events API body and a signed interactive payload are refused, then the user is answered', async () => {
    const path = '/webhooks/slack/acme/dev/default/slack';
    const signed = (body: string, contentType = 'application/json') => {
      const ts = String(Math.floor(Date.now() / 1000));
      return post(path, body, {
        'content-type': contentType,
        'x-slack-request-timestamp': ts,
        'x-slack-signature': slackSignature(SLACK_SIGNING, ts, body),
      });
    };
    const event = (eventId: string, extra: Record<string, unknown>) => {
      const body = fixture('slack/event_callback.message_im.json');
      body['event_id'] = eventId;
      body['event'] = { ...(body['event'] as object), user: 'UHOSTILE', channel: 'DUHOSTILE', ...extra };
      return body;
    };
    const before = h.accepted.mock.calls.length;
    expectTooDeep(await signed(withDeep(event('EvDeep1', { text: 'hi', blocks: '<deep>' }))), path);
    // Interactive payloads come form-encoded; 20,000 levels is what fits the body cap once encoded.
    const action = { ...fixture('slack/block_actions.json'), state: '<deep>' };
    const deepForm = `payload=${encodeURIComponent(
      JSON.stringify(action).replace('"<deep>"', '['.repeat(20_000) + ']'.repeat(20_000)),
    )}`;
    expectTooDeep(await signed(deepForm, 'application/x-www-form-urlencoded'), path);
    expect(h.accepted.mock.calls.length).toBe(before);

    expect((await signed(JSON.stringify(event('EvDeep2', { text: 'hi' })))).status).toBe(200);
    await until(
      () => slack.posts().filter((p) => p.args['channel'] === 'DUHOSTILE').length === 2,
      'welcome and question on slack',
    );
    expect(slack.posts().filter((p) => p.args['channel'] === 'DUHOSTILE')[0]!.args['text']).toBe(WELCOME);
  });

  it('teams: a Bot Framework activity with a valid token is refused, then the user is answered', async () => {
    const path = '/webhooks/teams/acme/dev/default/teams';
    const a = fixture('teams/activity.message.json');
    const activity = (id: string, extra: Record<string, unknown>) => ({
      ...a,
      id,
      serviceUrl: bf.serviceUrl,
      from: { ...(a['from'] as object), id: '29:hostile', name: 'hostile' },
      conversation: { ...(a['conversation'] as object), id: 'a:hostile' },
      ...extra,
    });
    const signed = async (body: string) => post(path, body, { authorization: `Bearer ${await bf.sign()}` });
    const before = h.accepted.mock.calls.length;
    expectTooDeep(await signed(withDeep(activity('deep-1', { text: 'hi', channelData: '<deep>' }))), path);
    expect(h.accepted.mock.calls.length).toBe(before);

    expect((await signed(JSON.stringify(activity('deep-2', { text: 'hi' })))).status).toBe(200);
    const toHostile = () =>
      bf.activities().filter((x) => (x.body['conversation'] as { id: string }).id === 'a:hostile');
    await until(() => toHostile().length === 2, 'welcome and question on teams');
    expect(toHostile()[0]!.body['text']).toBe(WELCOME);
  });

  it('telegram: an update with the secret token is refused, then the chat is answered', async () => {
    const path = '/webhooks/telegram/acme/dev/default/telegram';
    const update = (updateId: number, extra: Record<string, unknown>) => {
      const u = fixture('telegram/update.message.json');
      const m = u['message'] as Record<string, Record<string, unknown>>;
      u['update_id'] = updateId;
      u['message'] = {
        ...m,
        message_id: updateId,
        chat: { ...m['chat'], id: 7_700_001 },
        from: { ...m['from'], id: 7_700_001 },
        ...extra,
      };
      return u;
    };
    const signed = (body: string) => post(path, body, { 'x-telegram-bot-api-secret-token': TG_SECRET });
    const before = h.accepted.mock.calls.length;
    expectTooDeep(await signed(withDeep(update(77_001, { text: '/start', entities: '<deep>' }))), path);
    expect(h.accepted.mock.calls.length).toBe(before);

    expect((await signed(JSON.stringify(update(77_002, { text: '/start' })))).status).toBe(200);
    const toChat = () => tg.sends().filter((s) => s.body['chat_id'] === 7_700_001);
    await until(() => toChat().length === 2, 'welcome and question on telegram');
    expect(toChat()[0]!.body['text']).toBe(WELCOME);
  });

  it('whatsapp: a notification signed with the app secret is refused, then the sender is answered', async () => {
    const path = '/webhooks/whatsapp/acme/dev/default/whatsapp';
    const notification = (id: string, extra: Record<string, unknown>) => {
      const n = fixture('whatsapp/notification.text.json');
      const value = (n['entry'] as { changes: { value: Record<string, unknown> }[] }[])[0]!.changes[0]!.value;
      const m = (value['messages'] as Record<string, unknown>[])[0]!;
      Object.assign(m, { from: '15550001717', id, text: { body: 'hi' }, ...extra });
      (value['contacts'] as Record<string, unknown>[])[0]!['wa_id'] = '15550001717';
      return n;
    };
    const signed = (body: string) =>
      post(path, body, { 'x-hub-signature-256': 'sha256=' + hmacSha256(WA_SECRET, body).toString('hex') });
    const before = h.accepted.mock.calls.length;
    expectTooDeep(await signed(withDeep(notification('wamid.deep1', { context: '<deep>' }))), path);
    expect(h.accepted.mock.calls.length).toBe(before);

    expect((await signed(JSON.stringify(notification('wamid.deep2', {})))).status).toBe(200);
    const toSender = () => wa.sends().filter((s) => s.body['to'] === '15550001717');
    await until(() => toSender().length === 2, 'welcome and question on whatsapp');
    expect((toSender()[0]!.body['text'] as { body: string }).body).toBe(WELCOME);
  });
});

/** A Direct Line conversation with its stream open, recording what the stream delivers. */
async function openConversation(user: string, base = DL) {
  const gen = await post(`${base}/tokens/generate`, JSON.stringify({ user: { id: user } }), {
    authorization: `Bearer ${DL_SECRET}`,
  });
  const token = String(gen.body['token']);
  const started = await post(`${base}/conversations`, '', { authorization: `Bearer ${token}` });
  expect(started.status).toBe(201);
  const conversationId = String(started.body['conversationId']);
  const stream = await openStream(String(started.body['streamUrl']));
  return { token, conversationId, stream };
}

async function openStream(url: string) {
  const ws = new WebSocket(url);
  const seen: Activity[] = [];
  let closed: number | undefined;
  ws.on('message', (data: Buffer) => seen.push(...(JSON.parse(data.toString()) as ActivitySet).activities));
  ws.on('close', (code) => (closed = code));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    seen,
    closed: () => closed,
    botTexts: () => seen.filter((a) => a.type === 'message' && a.from?.role === 'bot').map((a) => a.text),
    close: () => ws.close(),
  };
}

async function activities(conversationId: string, token: string, base = DL) {
  const res = await fetch(`${h.url}${base}/conversations/${conversationId}/activities`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    set: (await res.json()) as ActivitySet,
  };
}

describe('hostile JSON on Direct Line (WebChat)', () => {
  it('refuses a deep activity with 400 and stores nothing; the conversation still reads and streams', async () => {
    const { token, conversationId, stream } = await openConversation('dl_hostile');
    try {
      const path = `${DL}/conversations/${conversationId}/activities`;
      const before = h.accepted.mock.calls.length;
      const deep = withDeep({
        type: 'message',
        from: { id: 'dl_hostile' },
        text: 'hi',
        channelData: '<deep>',
      });
      expectTooDeep(await post(path, deep, { authorization: `Bearer ${token}` }), path);
      expect(h.accepted.mock.calls.length).toBe(before);

      const empty = await activities(conversationId, token);
      expect(empty.status).toBe(200);
      expect(empty.set).toEqual({ activities: [], watermark: '0' });

      const hi = { type: 'message', from: { id: 'dl_hostile' }, text: 'hi' };
      expect((await post(path, JSON.stringify(hi), { authorization: `Bearer ${token}` })).status).toBe(200);
      await until(() => stream.botTexts().length === 2, 'welcome and question on the stream');
      expect(stream.botTexts()).toEqual([WELCOME, QUESTION]);
      expect(stream.closed()).toBeUndefined();

      const after = await activities(conversationId, token);
      expect(after.status).toBe(200);
      expect(after.type).toMatch(/^application\/json/);
      expect(after.set.activities.map((a) => a.text)).toEqual(['hi', WELCOME, QUESTION]);
    } finally {
      stream.close();
    }
  });

  it('refuses deep bodies on the default /v3/directline routes and on tokens/generate', async () => {
    const { token, conversationId, stream } = await openConversation('dl_default', '/v3/directline');
    try {
      const path = `/v3/directline/conversations/${conversationId}/activities`;
      expectTooDeep(
        await post(path, withDeep({ type: 'message', from: { id: 'dl_default' }, value: '<deep>' }), {
          authorization: `Bearer ${token}`,
        }),
        path,
      );
      expectTooDeep(
        await post(`${DL}/tokens/generate`, withDeep({ user: { id: 'x' }, extra: '<deep>' }), {
          authorization: `Bearer ${DL_SECRET}`,
        }),
        `${DL}/tokens/generate`,
      );
      const hi = { type: 'message', from: { id: 'dl_default' }, text: 'hi' };
      expect((await post(path, JSON.stringify(hi), { authorization: `Bearer ${token}` })).status).toBe(200);
      await until(() => stream.botTexts().length === 2, 'welcome and question on the default route');
      expect((await activities(conversationId, token, '/v3/directline')).set.activities).toHaveLength(3);
    } finally {
      stream.close();
    }
  });

  it('keeps a history readable and streaming when one stored activity cannot be serialised', async () => {
    const { token, conversationId, stream } = await openConversation('dl_poisoned');
    try {
      // What no route stores any more, put in the store itself: an activity too deep to serialise.
      const dl = h.app.get(DirectLineService);
      const resolved = h.app
        .get(WebChatChannels)
        .resolve({ tenant: 'acme', env: 'dev', team: 'default', channel: 'webchat' });
      const { activity: poisoned } = await dl.store.append(channelKey(resolved), conversationId, {
        type: 'message',
        from: { id: 'greentic-bot', role: 'bot' },
        text: 'unserialisable',
        channelData: JSON.parse(DEEP) as Record<string, unknown>,
      });
      const placeholder = {
        type: 'event',
        name: OMITTED_ACTIVITY_EVENT,
        id: poisoned.id,
        from: { id: 'greentic-bot', role: 'bot' },
      };

      const polled = await activities(conversationId, token);
      expect(polled.status).toBe(200);
      expect(polled.set.watermark).toBe('1');
      expect(polled.set.activities).toEqual([expect.objectContaining(placeholder)]);
      // The open stream got it as the same event, and stayed open.
      await until(() => stream.seen.length === 1, 'the placeholder on the live stream');
      expect(stream.seen[0]).toMatchObject(placeholder);
      expect(stream.closed()).toBeUndefined();
      expect(
        h.warnings().some((w) => w.obj['tenant'] === 'acme' && w.obj['activityId'] === poisoned.id),
      ).toBe(true);

      // A client reconnecting replays the backlog (the path that closed with 1011) and goes on.
      const res = await fetch(`${h.url}${DL}/conversations/${conversationId}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const again = await openStream(String(((await res.json()) as { streamUrl: string }).streamUrl));
      try {
        await until(() => again.seen.length === 1, 'the backlog on a new stream');
        expect(again.seen[0]).toMatchObject(placeholder);
        const hi = { type: 'message', from: { id: 'dl_poisoned' }, text: 'hi' };
        const path = `${DL}/conversations/${conversationId}/activities`;
        expect((await post(path, JSON.stringify(hi), { authorization: `Bearer ${token}` })).status).toBe(200);
        await until(() => again.botTexts().length === 2, 'welcome and question after the poisoned activity');
        expect(again.botTexts()).toEqual([WELCOME, QUESTION]);
        expect(again.closed()).toBeUndefined();
        expect((await activities(conversationId, token)).set.activities.map((a) => a.text)).toEqual([
          undefined,
          'hi',
          WELCOME,
          QUESTION,
        ]);
      } finally {
        again.close();
      }
    } finally {
      stream.close();
    }
  });
});
