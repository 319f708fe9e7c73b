import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slackSignature } from '../src/messaging/providers/slack/slack-signature.js';
import {
  CARD_FLOW,
  QUESTION,
  startProviderApp,
  until,
  WELCOME,
  type ProviderApp,
} from './support/fakes/provider-harness.js';
import { SlackApiFake } from './support/fakes/slack-api.fake.js';
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
 * Slack end to end on the production wiring (JetStream bus, Redis sessions): signed Events API
 * deliveries in, chat.postMessage to a local Slack Web API out.
 */

const SIGNING_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const BOT_TOKEN = 'xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy';
const fixture = (name: string) =>
  JSON.parse(readFileSync(`test/fixtures/providers/slack/${name}`, 'utf8')) as Record<string, unknown>;
const ROUTE = '/webhooks/slack/acme/dev/default/slack';

let slack: SlackApiFake;
let h: ProviderApp;
const ns = uniqueNatsNamespace('slack');
const redisPrefix = uniqueRedisPrefix('slack');

/** The documented message.im delivery, with this test's event id, user and text. */
function messageEvent(
  eventId: string,
  user: string,
  text: string,
  extra: Record<string, unknown> = {},
): string {
  const body = fixture('event_callback.message_im.json');
  body['event_id'] = eventId;
  body['event'] = { ...(body['event'] as object), user, text, channel: `D${user}`, ...extra };
  return JSON.stringify(body);
}

async function deliver(
  body: string,
  opts: {
    ts?: number;
    secret?: string;
    headers?: Record<string, string>;
    contentType?: string;
    route?: string;
  } = {},
) {
  const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
  const res = await fetch(h.url + (opts.route ?? ROUTE), {
    method: 'POST',
    headers: {
      'content-type': opts.contentType ?? 'application/json',
      'x-slack-request-timestamp': ts,
      'x-slack-signature': slackSignature(opts.secret ?? SIGNING_SECRET, ts, body),
      ...(opts.headers ?? {}),
    },
    body,
  });
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') };
}

const postsTo = (channel: string) => slack.posts().filter((p) => p.args['channel'] === channel);

beforeAll(async () => {
  await requireNats();
  await requireRedis();
  slack = await new SlackApiFake(BOT_TOKEN).start();
  h = await startProviderApp({
    channels: {
      slack: {
        provider: 'slack',
        settings: { api_base_url: slack.url },
        secret_refs: { signing_secret: 'slack_signing_secret', bot_token: 'slack_bot_token' },
      },
      slackcard: {
        provider: 'slack',
        flow: 'card',
        settings: { api_base_url: slack.url },
        secret_refs: { signing_secret: 'slack_signing_secret', bot_token: 'slack_bot_token' },
      },
    },
    flows: { 'card.ygtc': CARD_FLOW },
    secrets: { slack_signing_secret: SIGNING_SECRET, slack_bot_token: BOT_TOKEN },
    config: {
      GREENTIC_BUS: 'nats',
      GREENTIC_SESSIONS: 'redis',
      NATS_URL: SHARED_NATS_URL,
      REDIS_URL: SHARED_REDIS_URL,
      GREENTIC_REDIS_PREFIX: redisPrefix,
      GREENTIC_NATS_BACKOFF_MS: 100,
      ...ns,
    },
  });
});

afterAll(async () => {
  await h?.close();
  await slack?.close();
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX).catch(() => undefined);
  await deleteRedisPrefix(SHARED_REDIS_URL, redisPrefix).catch(() => undefined);
});

describe('Slack provider', () => {
  it('answers the url_verification handshake with the challenge, running no flow', async () => {
    const r = await deliver(JSON.stringify(fixture('url_verification.json')));
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^text\/plain/);
    expect(r.text).toBe('3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P');
    expect(h.accepted).not.toHaveBeenCalled();
  });

  it('holds the two-turn demo conversation: chat.postMessage with the bot token, exactly', async () => {
    const r1 = await deliver(messageEvent('EvTURN1', 'U100', 'hi'));
    expect(r1).toMatchObject({ status: 200, text: '' });
    await until(() => postsTo('DU100').length === 2, 'welcome and question');
    const [welcome, question] = postsTo('DU100');
    expect(welcome!.req.method).toBe('POST');
    expect(welcome!.req.path).toBe('/api/chat.postMessage');
    expect(welcome!.req.headers['authorization']).toBe(`Bearer ${BOT_TOKEN}`);
    expect(welcome!.req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const metadata = expect.any(String);
    expect(welcome!.args).toEqual({ channel: 'DU100', text: WELCOME, metadata });
    expect(question!.args).toEqual({ channel: 'DU100', text: QUESTION, metadata });
    // Each reply's idempotency key rides in its message metadata (chat.postMessage de-duplicates nothing).
    const keys = [welcome, question].map((p) => JSON.parse(String(p!.args['metadata'])) as unknown);
    expect(keys).toEqual([
      {
        event_type: 'greentic_reply',
        event_payload: { idempotency_key: expect.stringMatching(/^[\w-]{43}\.0$/) },
      },
      {
        event_type: 'greentic_reply',
        event_payload: { idempotency_key: expect.stringMatching(/^[\w-]{43}\.1$/) },
      },
    ]);

    const r2 = await deliver(messageEvent('EvTURN2', 'U100', 'Paris'));
    expect(r2.status).toBe(200);
    await until(() => postsTo('DU100').length === 3, 'forecast');
    expect(postsTo('DU100')[2]!.args).toEqual({
      channel: 'DU100',
      text: await h.forecast('Paris'),
      metadata: expect.any(String),
    });
  });

  it('replies in the thread of a threaded message', async () => {
    await deliver(messageEvent('EvTHREAD1', 'U200', 'hello', { thread_ts: '1355517500.000001' }));
    await until(() => postsTo('DU200').length === 2, 'threaded replies');
    expect(postsTo('DU200').map((p) => p.args)).toEqual([
      { channel: 'DU200', text: WELCOME, thread_ts: '1355517500.000001', metadata: expect.any(String) },
      { channel: 'DU200', text: QUESTION, thread_ts: '1355517500.000001', metadata: expect.any(String) },
    ]);
  });

  it('answers a retried delivery (X-Slack-Retry-Num, same event id) once', async () => {
    const body = messageEvent('EvRETRY1', 'U300', 'hello');
    expect((await deliver(body)).status).toBe(200);
    const retry = await deliver(body, {
      headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' },
    });
    expect(retry.status).toBe(200);
    // Same user, so the session orders its messages: once the next turn is answered, a duplicate run would have been too.
    await deliver(messageEvent('EvRETRY2', 'U300', 'Oslo'));
    await until(() => postsTo('DU300').length >= 3, 'the next turn');
    expect(postsTo('DU300').map((p) => p.args['text'])).toEqual([
      WELCOME,
      QUESTION,
      await h.forecast('Oslo'),
    ]);
  });

  it('ignores bot messages', async () => {
    const r = await deliver(JSON.stringify(fixture('event_callback.bot_message.json')));
    expect(r.status).toBe(200);
    expect(h.accepted.mock.calls.flatMap((c) => c[1].map((m) => m.id))).not.toContain('Ev123ABC457');
  });

  it('refuses a forged signature and a stale timestamp with 401, logged with the tenant, never reaching a flow', async () => {
    const before = h.accepted.mock.calls.length;
    const forged = await deliver(messageEvent('EvFORGED', 'U400', 'hi'), { secret: 'not-the-secret' });
    expect(forged.status).toBe(401);
    expect(JSON.parse(forged.text)).toMatchObject({
      error: { code: 'provider_unauthorized', message: 'slack: signature mismatch' },
    });
    const stale = await deliver(messageEvent('EvSTALE', 'U400', 'hi'), {
      ts: Math.floor(Date.now() / 1000) - 600,
    });
    expect(stale.status).toBe(401);
    expect(JSON.parse(stale.text).error.message).toMatch(/stale request/);
    expect(h.accepted.mock.calls.length).toBe(before);
    const refusals = h.warnings().filter((w) => w.msg === 'request refused' && w.obj['tenant'] === 'acme');
    expect(refusals.map((w) => w.obj['reason'])).toEqual(
      expect.arrayContaining(['slack: signature mismatch', expect.stringMatching(/stale request/)]),
    );
    expect(postsTo('DU400')).toEqual([]);
  });

  it('refuses an unknown tenant (404) and a signed but malformed payload (400)', async () => {
    const unknown = await deliver(messageEvent('EvX', 'U500', 'hi'), {
      route: '/webhooks/slack/nobody/dev/default/slack',
    });
    expect(unknown.status).toBe(404);
    const malformed = await deliver('{"type":"event_callback","event":');
    expect(malformed.status).toBe(400);
    const other = await deliver(messageEvent('EvY', 'U500', 'hi'), {
      route: '/webhooks/slack/globex/dev/default/slack',
    });
    // globex has its own signing secret: acme's signature is worthless there.
    expect(other.status).toBe(401);
    expect(h.warnings().some((w) => w.msg === 'request refused' && w.obj['tenant'] === 'globex')).toBe(true);
  });

  it('turns a block_actions click into the answer, and sends choices as Block Kit buttons', async () => {
    const payload = fixture('block_actions.json');
    payload['user'] = { id: 'U600', username: 'u600', team_id: 'T9TK3CUKW' };
    payload['channel'] = { id: 'DU600', name: 'directmessage' };
    (payload['actions'] as Record<string, unknown>[])[0]!['value'] = 'Lima';
    await deliver(messageEvent('EvACT1', 'U600', 'hi'));
    await until(() => postsTo('DU600').length === 2, 'question');
    const r = await deliver(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), {
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(r.status).toBe(200);
    await until(() => postsTo('DU600').length === 3, 'forecast after the click');
    expect(postsTo('DU600')[2]!.args['text']).toBe(await h.forecast('Lima'));
  });

  it('sends an Adaptive Card as Block Kit text and buttons; a click comes back as the Submit data', async () => {
    const route = '/webhooks/slack/acme/dev/default/slackcard';
    await deliver(messageEvent('EvCARD1', 'U800', 'hi'), { route });
    await until(() => postsTo('DU800').length === 2, 'the echo and the card');
    const card = postsTo('DU800')[1]!.args;
    const blocks = JSON.parse(String(card['blocks'])) as Record<string, unknown>[];
    expect(card['text']).toBe('Ticket INC-7\nStatus: Open\nPortal: https://itsm.example.com/INC-7');
    expect(blocks.slice(0, 2)).toEqual([
      { type: 'header', text: { type: 'plain_text', text: 'Ticket INC-7' } },
      { type: 'section', text: { type: 'mrkdwn', text: 'Status: Open' } },
    ]);
    const buttons = blocks[2]!['elements'] as Record<string, unknown>[];
    expect(
      buttons.map((b) => [b['action_id'], (b['text'] as { text: string }).text, b['value'] ?? b['url']]),
    ).toEqual([
      ['card_submit_0', 'Close', '{"action_id":"close","ticket":"INC-7"}'],
      [
        'card_submit_1',
        'Escalate',
        '{"action_id":"escalate","ticket":"INC-7","note":"needs a manager before the end of the day"}',
      ],
      ['choice_2', 'Portal', 'https://itsm.example.com/INC-7'],
    ]);

    const payload = fixture('block_actions.json');
    payload['trigger_id'] = `trig-card-${Date.now()}`;
    payload['user'] = { id: 'U800', username: 'u800', team_id: 'T9TK3CUKW' };
    payload['channel'] = { id: 'DU800', name: 'directmessage' };
    payload['actions'] = [{ ...buttons[0], block_id: 'greentic_choices', action_ts: '1548426417.840180' }];
    const r = await deliver(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), {
      contentType: 'application/x-www-form-urlencoded',
      route,
    });
    expect(r.status).toBe(200);
    await until(() => postsTo('DU800').length === 4, 'the echo of the click');
    expect(postsTo('DU800')[2]!.args['text']).toBe('action=close');
    const clicked = h.envelopes().find((e) => e.id === payload['trigger_id']);
    expect(clicked).toMatchObject({
      text: 'Close',
      action: { type: 'card_submit', action_id: 'close', ticket: 'INC-7' },
    });
    // Slack events carry no locale.
    expect(clicked!.locale).toBeUndefined();
  });

  it('honours 429 Retry-After from Slack and still delivers once', async () => {
    slack.script.push({
      status: 429,
      headers: { 'retry-after': '1' },
      body: { ok: false, error: 'ratelimited' },
    });
    const t0 = Date.now();
    await deliver(messageEvent('EvRATE1', 'U700', 'hi'));
    await until(() => postsTo('DU700').length === 2, 'replies after the rate limit');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(postsTo('DU700').map((p) => p.args['text'])).toEqual([WELCOME, QUESTION]);
    const attempts = slack
      .attempts()
      .filter((r) => new URLSearchParams(r.body.toString()).get('channel') === 'DU700');
    expect(attempts).toHaveLength(3);
  });
});
