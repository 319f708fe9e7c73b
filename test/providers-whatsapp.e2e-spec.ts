import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hmacSha256 } from '../src/messaging/providers/provider-support.js';
import {
  CARD_FLOW,
  COLOUR_FLOW,
  QUESTION,
  startProviderApp,
  until,
  WELCOME,
  type ProviderApp,
} from './support/fakes/provider-harness.js';
import { WhatsAppApiFake } from './support/fakes/whatsapp-api.fake.js';

/** WhatsApp Cloud API end to end: signed webhook notifications in, Graph `messages` out. */

const APP_SECRET = 'c0ffee5ecret0fthewhatsappapp';
const VERIFY_TOKEN = 'meatyhamhock';
const ACCESS_TOKEN = 'EAAJB2x8ZAx4cBAFake';
const PHONE_NUMBER_ID = '106540352242922';
const fixture = (name: string) =>
  JSON.parse(readFileSync(`test/fixtures/providers/whatsapp/${name}`, 'utf8')) as Record<string, unknown>;

let wa: WhatsAppApiFake;
let h: ProviderApp;
let seq = 0;

/** A documented notification, with this test's sender, text (or button) and a fresh wamid. */
function notification(
  name: string,
  from: string,
  patch: (m: Record<string, unknown>) => void = () => undefined,
  id = `wamid.test${++seq}`,
): string {
  const n = fixture(name);
  const value = (n['entry'] as { changes: { value: Record<string, unknown> }[] }[])[0]!.changes[0]!.value;
  const m = (value['messages'] as Record<string, unknown>[] | undefined)?.[0];
  if (m) {
    m['from'] = from;
    m['id'] = id;
    patch(m);
    (value['contacts'] as Record<string, unknown>[])[0]!['wa_id'] = from;
  }
  return JSON.stringify(n);
}

const text = (from: string, body: string, id?: string) =>
  notification('notification.text.json', from, (m) => (m['text'] = { body }), id);

async function deliver(body: string, secret: string | null = APP_SECRET, channel = 'whatsapp') {
  const res = await fetch(`${h.url}/webhooks/whatsapp/acme/dev/default/${channel}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(secret ? { 'x-hub-signature-256': 'sha256=' + hmacSha256(secret, body).toString('hex') } : {}),
    },
    body,
  });
  return { status: res.status, text: await res.text() };
}

const sendsTo = (to: string) => wa.sends().filter((s) => s.body['to'] === to);

beforeAll(async () => {
  wa = await new WhatsAppApiFake(ACCESS_TOKEN, PHONE_NUMBER_ID).start();
  const settings = { api_base_url: wa.url, phone_number_id: PHONE_NUMBER_ID };
  const secret_refs = {
    verify_token: 'wa_verify_token',
    app_secret: 'wa_app_secret',
    access_token: 'wa_access_token',
  };
  h = await startProviderApp({
    channels: {
      whatsapp: { provider: 'whatsapp', settings, secret_refs },
      wacolour: { provider: 'whatsapp', flow: 'colour', settings, secret_refs },
      wacard: { provider: 'whatsapp', flow: 'card', settings, secret_refs },
    },
    flows: { 'colour.ygtc': COLOUR_FLOW, 'card.ygtc': CARD_FLOW },
    secrets: { wa_verify_token: VERIFY_TOKEN, wa_app_secret: APP_SECRET, wa_access_token: ACCESS_TOKEN },
  });
});

afterAll(async () => {
  await h?.close();
  await wa?.close();
});

describe('WhatsApp provider', () => {
  it('answers the GET verification with hub.challenge, and 403 for a wrong verify token', async () => {
    const q = (token: string) => `?hub.mode=subscribe&hub.verify_token=${token}&hub.challenge=1158201444`;
    const ok = await fetch(`${h.url}/webhooks/whatsapp/acme/dev/default/whatsapp${q(VERIFY_TOKEN)}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('1158201444');
    const bad = await fetch(`${h.url}/webhooks/whatsapp/acme/dev/default/whatsapp${q('guess')}`);
    expect(bad.status).toBe(403);
    expect(
      h
        .warnings()
        .some(
          (w) =>
            w.msg === 'request refused' &&
            w.obj['tenant'] === 'acme' &&
            w.obj['reason'] === 'whatsapp: hub.verify_token mismatch',
        ),
    ).toBe(true);
  });

  it('holds the two-turn demo conversation through the messages endpoint, exactly', async () => {
    expect((await deliver(text('16505551234', 'hi'))).status).toBe(200);
    await until(() => sendsTo('16505551234').length === 2, 'welcome and question');
    const [welcome, question] = sendsTo('16505551234');
    expect(welcome!.req.method).toBe('POST');
    expect(welcome!.req.path).toBe(`/v21.0/${PHONE_NUMBER_ID}/messages`);
    expect(welcome!.req.headers['authorization']).toBe(`Bearer ${ACCESS_TOKEN}`);
    expect(welcome!.req.headers['content-type']).toBe('application/json');
    const base = {
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: '16505551234',
      type: 'text',
      // Each reply's idempotency key (the Cloud API echoes it in status webhooks; it de-duplicates nothing).
      biz_opaque_callback_data: expect.stringMatching(/^[\w-]{43}\.\d+$/),
    };
    expect(welcome!.body).toEqual({ ...base, text: { preview_url: false, body: WELCOME } });
    expect(question!.body).toEqual({ ...base, text: { preview_url: false, body: QUESTION } });
    expect(String(welcome!.body['biz_opaque_callback_data'])).toMatch(/\.0$/);
    expect(String(question!.body['biz_opaque_callback_data'])).toMatch(/\.1$/);
    await deliver(text('16505551234', 'Paris'));
    await until(() => sendsTo('16505551234').length === 3, 'forecast');
    expect(sendsTo('16505551234')[2]!.body).toEqual({
      ...base,
      text: { preview_url: false, body: await h.forecast('Paris') },
    });
  });

  it('answers a redelivered message (same wamid) once; statuses run no flow', async () => {
    const first = text('15550001111', 'hello', 'wamid.REPLAYED1');
    await deliver(first);
    await deliver(first);
    const before = h.accepted.mock.calls.length;
    expect((await deliver(JSON.stringify(fixture('notification.status.json')))).status).toBe(200);
    expect(h.accepted.mock.calls.length).toBe(before);
    await deliver(text('15550001111', 'Lima'));
    await until(() => sendsTo('15550001111').length >= 3, 'the next turn');
    expect(sendsTo('15550001111').map((s) => (s.body['text'] as { body: string }).body)).toEqual([
      WELCOME,
      QUESTION,
      await h.forecast('Lima'),
    ]);
  });

  it('refuses a forged or missing X-Hub-Signature-256 with 401, never reaching a flow', async () => {
    const before = h.accepted.mock.calls.length;
    const forged = await deliver(text('15550002222', 'hi'), 'not-the-app-secret');
    expect(forged.status).toBe(401);
    expect(JSON.parse(forged.text)).toMatchObject({ error: { message: 'whatsapp: signature mismatch' } });
    expect((await deliver(text('15550002222', 'hi'), null)).status).toBe(401);
    expect((await deliver('{"object":"whatsapp_business_account"}')).status).toBe(400);
    expect(h.accepted.mock.calls.length).toBe(before);
    expect(
      h
        .warnings()
        .some(
          (w) =>
            w.msg === 'request refused' &&
            w.obj['tenant'] === 'acme' &&
            w.obj['reason'] === 'whatsapp: signature mismatch',
        ),
    ).toBe(true);
  });

  it('sends choices as reply buttons and reads the button_reply that answers them', async () => {
    await deliver(text('15550003333', 'hi'), APP_SECRET, 'wacolour');
    await until(() => sendsTo('15550003333').length === 1, 'the question');
    expect(sendsTo('15550003333')[0]!.body).toEqual({
      biz_opaque_callback_data: expect.any(String),
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: '15550003333',
      type: 'interactive',
      interactive: {
        type: 'button',
        body: { text: 'Favourite colour?' },
        action: {
          buttons: [
            { type: 'reply', reply: { id: 'Red', title: 'Red' } },
            { type: 'reply', reply: { id: 'Blue', title: 'Blue' } },
          ],
        },
      },
    });
    await deliver(notification('notification.button_reply.json', '15550003333'), APP_SECRET, 'wacolour');
    await until(() => sendsTo('15550003333').length === 2, 'the card');
    expect(sendsTo('15550003333')[1]!.body['interactive']).toEqual({
      type: 'button',
      header: { type: 'text', text: 'Your colour' },
      body: { text: 'You chose Blue.\nBlue' },
      action: { buttons: [{ type: 'reply', reply: { id: 'Again', title: 'Again' } }] },
    });
  });

  it('sends an Adaptive Card as reply buttons whose ids carry the Submit data back, the link in the text', async () => {
    const to = '15550005555';
    await deliver(text(to, 'hi'), APP_SECRET, 'wacard');
    await until(() => sendsTo(to).length === 2, 'the echo and the card');
    const interactive = sendsTo(to)[1]!.body['interactive'] as {
      action: { buttons: { reply: { id: string; title: string } }[] };
    };
    expect(interactive).toEqual({
      type: 'button',
      header: { type: 'text', text: 'Ticket INC-7' },
      body: { text: 'Status: Open\nPortal: https://itsm.example.com/INC-7' },
      action: {
        buttons: [
          { type: 'reply', reply: { id: '~?action_id=close&ticket=INC-7', title: 'Close' } },
          {
            type: 'reply',
            reply: {
              id: '~?action_id=escalate&ticket=INC-7&note=needs+a+manager+before+the+end+of+the+day',
              title: 'Escalate',
            },
          },
        ],
      },
    });
    const tapped = interactive.action.buttons[1]!.reply;
    await deliver(
      notification('notification.button_reply.json', to, (m) => {
        m['interactive'] = { type: 'button_reply', button_reply: tapped };
      }),
      APP_SECRET,
      'wacard',
    );
    await until(() => sendsTo(to).length === 4, 'the echo of the tap');
    expect((sendsTo(to)[2]!.body['text'] as { body: string }).body).toBe('action=escalate');
    const env = h.envelopes().filter((e) => e.userId === to)[1]!;
    expect(env).toMatchObject({
      text: 'Escalate',
      action: {
        type: 'card_submit',
        action_id: 'escalate',
        ticket: 'INC-7',
        note: 'needs a manager before the end of the day',
      },
    });
    // WhatsApp messages carry no locale.
    expect(env.locale).toBeUndefined();
  });

  it('retries a Graph rate limit (HTTP 429, code 130429)', async () => {
    wa.script.push({
      status: 429,
      body: {
        error: { message: '(#130429) Rate limit hit', type: 'OAuthException', code: 130429, fbtrace_id: 'x' },
      },
    });
    await deliver(text('15550004444', 'hi'));
    await until(() => sendsTo('15550004444').length === 2, 'replies after the rate limit');
    expect(wa.attempts().filter((r) => JSON.parse(r.body.toString())['to'] === '15550004444')).toHaveLength(
      3,
    );
  });
});
