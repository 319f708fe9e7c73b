import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CARD_FLOW,
  COLOUR_FLOW,
  QUESTION,
  startProviderApp,
  until,
  WELCOME,
  type ProviderApp,
} from './support/fakes/provider-harness.js';
import { TelegramApiFake } from './support/fakes/telegram-api.fake.js';
import {
  deleteRedisPrefix,
  requireRedis,
  SHARED_REDIS_URL,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';

/** Telegram end to end: Bot API webhook updates in, sendMessage to a local Bot API out. */

const SECRET_TOKEN = 'Tg_secret-token_0123456789';
const BOT_TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const fixture = (name: string) =>
  JSON.parse(readFileSync(`test/fixtures/providers/telegram/${name}`, 'utf8')) as Record<string, unknown>;

let tg: TelegramApiFake;
let h: ProviderApp;
let nextUpdate = 20000;

/** The documented text-message update, for this test's chat and text. */
function messageUpdate(chatId: number, text: string, updateId = nextUpdate++): string {
  const u = fixture('update.message.json');
  const m = u['message'] as Record<string, Record<string, unknown>>;
  u['update_id'] = updateId;
  u['message'] = {
    ...m,
    message_id: updateId,
    text,
    chat: { ...m['chat'], id: chatId },
    from: { ...m['from'], id: chatId },
  };
  return JSON.stringify(u);
}

/** The documented callback_query update: a tap on a button of the keyboard `replyMarkup` in this test's chat. */
function callbackUpdate(chatId: number, data: string, replyMarkup: unknown, languageCode?: string): string {
  const cq = fixture('update.callback_query.json');
  cq['update_id'] = nextUpdate++;
  const q = cq['callback_query'] as Record<string, Record<string, unknown>>;
  cq['callback_query'] = {
    ...q,
    id: `cq-${cq['update_id'] as number}`,
    data,
    from: { ...q['from'], id: chatId, ...(languageCode ? { language_code: languageCode } : {}) },
    message: { ...q['message'], chat: { id: chatId, type: 'private' }, reply_markup: replyMarkup },
  };
  return JSON.stringify(cq);
}

async function deliver(body: string, token: string | null = SECRET_TOKEN, channel = 'telegram') {
  const res = await fetch(`${h.url}/webhooks/telegram/acme/dev/default/${channel}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { 'x-telegram-bot-api-secret-token': token } : {}),
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

const sendsTo = (chatId: number) => tg.sends().filter((s) => s.body['chat_id'] === chatId);

beforeAll(async () => {
  tg = await new TelegramApiFake(BOT_TOKEN).start();
  const settings = { api_base_url: tg.url };
  const secret_refs = { webhook_secret: 'tg_webhook_secret', bot_token: 'tg_bot_token' };
  h = await startProviderApp({
    channels: {
      telegram: { provider: 'telegram', settings, secret_refs },
      tgcolour: { provider: 'telegram', flow: 'colour', settings, secret_refs },
      tgcard: { provider: 'telegram', flow: 'card', settings, secret_refs },
    },
    flows: { 'colour.ygtc': COLOUR_FLOW, 'card.ygtc': CARD_FLOW },
    secrets: { tg_webhook_secret: SECRET_TOKEN, tg_bot_token: BOT_TOKEN },
  });
});

afterAll(async () => {
  await h?.close();
  await tg?.close();
});

describe('Telegram provider', () => {
  it('holds the two-turn demo conversation through sendMessage, exactly', async () => {
    const r1 = await deliver(messageUpdate(1111111, '/start'));
    expect(r1.status).toBe(200);
    await until(() => sendsTo(1111111).length === 2, 'welcome and question');
    const [welcome, question] = sendsTo(1111111);
    expect(welcome!.req.method).toBe('POST');
    expect(welcome!.req.path).toBe(`/bot${BOT_TOKEN}/sendMessage`);
    expect(welcome!.req.headers['content-type']).toBe('application/json');
    expect(welcome!.body).toEqual({ chat_id: 1111111, text: WELCOME });
    expect(question!.body).toEqual({ chat_id: 1111111, text: QUESTION });

    await deliver(messageUpdate(1111111, 'Paris'));
    await until(() => sendsTo(1111111).length === 3, 'forecast');
    expect(sendsTo(1111111)[2]!.body).toEqual({ chat_id: 1111111, text: await h.forecast('Paris') });
  });

  it('answers a replayed update_id once', async () => {
    const first = messageUpdate(2222222, 'hello');
    expect((await deliver(first)).status).toBe(200);
    expect((await deliver(first)).status).toBe(200);
    // Same chat: once the next update is answered, a second run of the replay would have been too.
    await deliver(messageUpdate(2222222, 'Oslo'));
    await until(() => sendsTo(2222222).length >= 3, 'the next turn');
    expect(sendsTo(2222222).map((s) => s.body['text'])).toEqual([
      WELCOME,
      QUESTION,
      await h.forecast('Oslo'),
    ]);
  });

  it('refuses a wrong or missing secret token with 401, logged with the tenant, never reaching a flow', async () => {
    const before = h.accepted.mock.calls.length;
    const wrong = await deliver(messageUpdate(3333333, 'hi'), 'guessed-token');
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({
      error: { code: 'provider_unauthorized', message: 'telegram: secret token mismatch' },
    });
    expect((await deliver(messageUpdate(3333333, 'hi'), null)).status).toBe(401);
    expect(h.accepted.mock.calls.length).toBe(before);
    expect(
      h
        .warnings()
        .some(
          (w) =>
            w.msg === 'request refused' &&
            w.obj['tenant'] === 'acme' &&
            w.obj['reason'] === 'telegram: secret token mismatch',
        ),
    ).toBe(true);
    expect(sendsTo(3333333)).toEqual([]);
  });

  it('refuses a malformed Update with 400 and an unknown tenant with 404', async () => {
    expect((await deliver('{"message":{"text":"no update id"}}')).status).toBe(400);
    const res = await fetch(`${h.url}/webhooks/telegram/nobody/dev/default/telegram`, {
      method: 'POST',
      headers: { 'x-telegram-bot-api-secret-token': SECRET_TOKEN },
      body: messageUpdate(1, 'x'),
    });
    expect(res.status).toBe(404);
  });

  it('sends choices as an inline keyboard and reads the callback_query that answers them', async () => {
    await deliver(messageUpdate(4444444, 'hi'), SECRET_TOKEN, 'tgcolour');
    await until(() => sendsTo(4444444).length === 1, 'the question');
    expect(sendsTo(4444444)[0]!.body).toEqual({
      chat_id: 4444444,
      text: 'Favourite colour?',
      reply_markup: {
        inline_keyboard: [[{ text: 'Red', callback_data: 'Red' }], [{ text: 'Blue', callback_data: 'Blue' }]],
      },
    });
    const cq = fixture('update.callback_query.json');
    cq['update_id'] = nextUpdate++;
    const q = cq['callback_query'] as Record<string, Record<string, unknown>>;
    cq['callback_query'] = {
      ...q,
      from: { ...q['from'], id: 4444444 },
      message: { ...q['message'], chat: { ...(q['message']!['chat'] as object), id: 4444444 } },
    };
    const r = await deliver(JSON.stringify(cq), SECRET_TOKEN, 'tgcolour');
    expect(r).toEqual({
      status: 200,
      body: { method: 'answerCallbackQuery', callback_query_id: '4382bfdwdsb323b2d9' },
    });
    await until(() => sendsTo(4444444).length === 2, 'the card');
    expect(sendsTo(4444444)[1]!.body).toEqual({
      chat_id: 4444444,
      text: '<b>Your colour</b>\nYou chose Blue.\nBlue',
      parse_mode: 'HTML',
      reply_markup: { inline_keyboard: [[{ text: 'Again', callback_data: 'Again' }]] },
    });
  });

  it('sends an Adaptive Card as text with a keyboard whose taps come back as the Submit data, with the language_code as locale', async () => {
    const chat = 6666666;
    const u = JSON.parse(messageUpdate(chat, 'hi')) as Record<
      string,
      Record<string, Record<string, unknown>>
    >;
    u['message']!['from']!['language_code'] = 'de';
    await deliver(JSON.stringify(u), SECRET_TOKEN, 'tgcard');
    await until(() => sendsTo(chat).length === 2, 'the echo and the card');
    const card = sendsTo(chat)[1]!.body;
    const keyboard = (card['reply_markup'] as { inline_keyboard: Record<string, string>[][] })
      .inline_keyboard;
    expect(card).toMatchObject({ text: '<b>Ticket INC-7</b>\nStatus: Open', parse_mode: 'HTML' });
    expect(keyboard[0]).toEqual([{ text: 'Close', callback_data: '~?action_id=close&ticket=INC-7' }]);
    // Too long for 64 bytes: a short token the provider keeps.
    expect(keyboard[1]![0]!['text']).toBe('Escalate');
    expect(keyboard[1]![0]!['callback_data']).toMatch(/^~#[\w-]{12}$/);
    expect(keyboard[2]).toEqual([{ text: 'Portal', url: 'https://itsm.example.com/INC-7' }]);

    const tap = (data: string) =>
      deliver(callbackUpdate(chat, data, card['reply_markup'], 'de'), SECRET_TOKEN, 'tgcard');
    expect((await tap(keyboard[0]![0]!['callback_data']!)).status).toBe(200);
    await until(() => sendsTo(chat).length === 4, 'the echo of Close');
    expect(sendsTo(chat)[2]!.body['text']).toBe('action=close');
    await tap(keyboard[1]![0]!['callback_data']!);
    await until(() => sendsTo(chat).length === 6, 'the echo of Escalate');
    expect(sendsTo(chat)[4]!.body['text']).toBe('action=escalate');
    const envs = h.envelopes().filter((e) => e.conversationId === String(chat));
    expect(envs.map((e) => [e.text, e.locale, e.action])).toEqual([
      ['hi', 'de', undefined],
      ['Close', 'de', { type: 'card_submit', action_id: 'close', ticket: 'INC-7' }],
      [
        'Escalate',
        'de',
        {
          type: 'card_submit',
          action_id: 'escalate',
          ticket: 'INC-7',
          note: 'needs a manager before the end of the day',
        },
      ],
    ]);
  });

  it('honours 429 retry_after from the Bot API', async () => {
    tg.script.push({ status: 429, body: fixture('error.429.json') });
    const t0 = Date.now();
    await deliver(messageUpdate(5555555, 'hi'));
    await until(() => sendsTo(5555555).length === 2, 'replies after flood control');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(tg.attempts().filter((r) => JSON.parse(r.body.toString())['chat_id'] === 5555555)).toHaveLength(3);
    expect(sendsTo(5555555).map((s) => s.body['text'])).toEqual([WELCOME, QUESTION]);
  });
});

describe('Telegram across replicas (sessions in Redis)', () => {
  const prefix = uniqueRedisPrefix('telegram-stash');
  let replicas: ProviderApp[] = [];

  beforeAll(async () => {
    await requireRedis();
    const settings = { api_base_url: tg.url };
    const secret_refs = { webhook_secret: 'tg_webhook_secret', bot_token: 'tg_bot_token' };
    for (let i = 0; i < 2; i++)
      replicas.push(
        await startProviderApp({
          channels: { tgcard: { provider: 'telegram', flow: 'card', settings, secret_refs } },
          flows: { 'card.ygtc': CARD_FLOW },
          secrets: { tg_webhook_secret: SECRET_TOKEN, tg_bot_token: BOT_TOKEN },
          config: { GREENTIC_SESSIONS: 'redis', REDIS_URL: SHARED_REDIS_URL, GREENTIC_REDIS_PREFIX: prefix },
        }),
      );
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    replicas = [];
    await deleteRedisPrefix(SHARED_REDIS_URL, prefix);
  });

  it('reads a tap on a stashed card button at the replica that did not send the card', async () => {
    const chat = 7777777;
    const post = (replica: ProviderApp, body: string) =>
      fetch(`${replica.url}/webhooks/telegram/acme/dev/default/tgcard`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET_TOKEN },
        body,
      });
    expect((await post(replicas[0]!, messageUpdate(chat, 'hi'))).status).toBe(200);
    await until(() => sendsTo(chat).length === 2, 'the echo and the card, sent by replica 0');
    const card = sendsTo(chat)[1]!.body;
    const escalate = (card['reply_markup'] as { inline_keyboard: Record<string, string>[][] })
      .inline_keyboard[1]![0]!['callback_data']!;
    expect(escalate).toMatch(/^~#[\w-]{12}$/);

    expect((await post(replicas[1]!, callbackUpdate(chat, escalate, card['reply_markup']))).status).toBe(200);
    await until(() => sendsTo(chat).length === 4, 'the echo of Escalate, from replica 1');
    expect(sendsTo(chat)[2]!.body['text']).toBe('action=escalate');
    expect(replicas[1]!.envelopes().find((e) => e.conversationId === String(chat))?.action).toEqual({
      type: 'card_submit',
      action_id: 'escalate',
      ticket: 'INC-7',
      note: 'needs a manager before the end of the day',
    });
  });
});
