import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fakeChannel, fakeSecrets, providerRequest } from '../../../../test/support/fakes/channel-context.js';
import { hmacSha256 } from '../provider-support.js';
import { toWhatsAppMessage, WhatsAppProvider } from './whatsapp.provider.js';

const APP_SECRET = 'wa-app-secret';
const fixture = (name: string) => readFileSync(`test/fixtures/providers/whatsapp/${name}`, 'utf8');
const provider = new WhatsAppProvider(
  fakeSecrets({ verify_token: 'verify-me', app_secret: APP_SECRET, access_token: 'EAAG' }),
);
const channel = fakeChannel('whatsapp');
const signed = (body: string, secret = APP_SECRET) =>
  providerRequest(body, {
    'content-type': 'application/json',
    'x-hub-signature-256': 'sha256=' + hmacSha256(secret, body).toString('hex'),
  });

describe('WhatsAppProvider', () => {
  it('answers the verification request with hub.challenge, and 403 for another verify token', async () => {
    const ok = await provider.challenge(
      providerRequest(
        '',
        {},
        { 'hub.mode': 'subscribe', 'hub.verify_token': 'verify-me', 'hub.challenge': '1158201444' },
        'GET',
      ),
      channel,
    );
    expect(ok).toEqual({ status: 200, headers: { 'content-type': 'text/plain' }, body: '1158201444' });
    await expect(
      provider.challenge(
        providerRequest(
          '',
          {},
          { 'hub.mode': 'subscribe', 'hub.verify_token': 'nope', 'hub.challenge': '1' },
          'GET',
        ),
        channel,
      ),
    ).rejects.toMatchObject({ httpStatus: 403 });
  });

  it('reads a text message keyed by its wamid, with the phone number id as delivery hint', async () => {
    const r = await provider.ingress(signed(fixture('notification.text.json')), channel);
    expect(r.messages).toEqual([
      expect.objectContaining({
        id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=',
        conversationId: '16505551234',
        userId: '16505551234',
        text: 'Does it come in another color?',
        meta: { phone_number_id: '106540352242922' },
      }),
    ]);
  });

  it('reads a reply button click as its id; statuses run no flow', async () => {
    const r = await provider.ingress(signed(fixture('notification.button_reply.json')), channel);
    expect(r.messages[0]).toMatchObject({
      text: 'Blue',
      action: { type: 'button_reply', id: 'Blue', title: 'Blue' },
    });
    expect((await provider.ingress(signed(fixture('notification.status.json')), channel)).messages).toEqual(
      [],
    );
  });

  it('refuses a forged or missing X-Hub-Signature-256 with 401', async () => {
    await expect(
      provider.ingress(signed(fixture('notification.text.json'), 'other'), channel),
    ).rejects.toMatchObject({ httpStatus: 401 });
    await expect(
      provider.ingress(providerRequest(fixture('notification.text.json')), channel),
    ).rejects.toMatchObject({ httpStatus: 401 });
  });
});

describe('messages mapping', () => {
  it('sends text, up to three short choices as reply buttons, more as a list', () => {
    expect(toWhatsAppMessage('1', { text: 'hi' })).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: '1',
      type: 'text',
      text: { preview_url: false, body: 'hi' },
    });
    const buttons = toWhatsAppMessage('1', { text: 'Colour?', choices: ['Red', 'Blue'] })!;
    expect(buttons['interactive']).toEqual({
      type: 'button',
      body: { text: 'Colour?' },
      action: {
        buttons: [
          { type: 'reply', reply: { id: 'Red', title: 'Red' } },
          { type: 'reply', reply: { id: 'Blue', title: 'Blue' } },
        ],
      },
    });
    const list = toWhatsAppMessage('1', { text: 'City?', choices: ['Paris', 'Oslo', 'Lima', 'Cairo'] })!;
    expect((list['interactive'] as Record<string, unknown>)['type']).toBe('list');
    expect(
      (list['interactive'] as { action: { sections: { rows: unknown[] }[] } }).action.sections[0]!.rows,
    ).toHaveLength(4);
  });

  it('sends more than three Adaptive Card Submits as a list whose row ids carry the data', () => {
    const actions = ['a', 'b', 'c', 'd'].map((k) => ({
      type: 'Action.Submit',
      title: `Option ${k}`,
      data: { action_id: k, n: 1 },
    }));
    const m = toWhatsAppMessage('1', {
      card: { type: 'AdaptiveCard', body: [{ type: 'TextBlock', text: 'Choose one' }], actions },
    })!;
    const interactive = m['interactive'] as {
      type: string;
      body: { text: string };
      action: { sections: { rows: { id: string; title: string }[] }[] };
    };
    expect(interactive.type).toBe('list');
    expect(interactive.body.text).toBe('Choose one');
    expect(interactive.action.sections[0]!.rows[3]).toEqual({
      id: '~{"action_id":"d","n":1}',
      title: 'Option d',
    });
  });
});
