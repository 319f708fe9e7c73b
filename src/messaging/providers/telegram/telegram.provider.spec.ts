import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fakeChannel, fakeSecrets, providerRequest } from '../../../../test/support/fakes/channel-context.js';
import { MemoryProviderStash } from '../../../sessions/memory-provider-stash.js';
import { toSendMessage, TelegramProvider } from './telegram.provider.js';

const fixture = (name: string) => readFileSync(`test/fixtures/providers/telegram/${name}`, 'utf8');
const provider = new TelegramProvider(
  fakeSecrets({ webhook_secret: 'tg-secret_123', bot_token: '123:abc' }),
  new MemoryProviderStash(),
);
const channel = fakeChannel('telegram');
const req = (body: string, token = 'tg-secret_123') =>
  providerRequest(body, { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': token });

describe('TelegramProvider ingress', () => {
  it('reads a text message keyed by update_id', async () => {
    const r = await provider.ingress(req(fixture('update.message.json')), channel);
    expect(r.messages).toEqual([
      expect.objectContaining({
        id: '10000',
        conversationId: '1111111',
        userId: '1111111',
        text: '/start',
        meta: { chat_id: 1111111, message_id: 1365 },
      }),
    ]);
    expect(r.response).toEqual({ status: 200 });
  });

  it('reads a callback_query as the clicked value and answers it in the webhook response', async () => {
    const r = await provider.ingress(req(fixture('update.callback_query.json')), channel);
    expect(r.messages[0]).toMatchObject({
      id: '10001',
      conversationId: '1111111',
      text: 'Blue',
      action: { type: 'callback_query', data: 'Blue' },
    });
    expect(r.response).toEqual({
      status: 200,
      body: { method: 'answerCallbackQuery', callback_query_id: '4382bfdwdsb323b2d9' },
    });
  });

  it('refuses a wrong or missing secret token with 401', async () => {
    await expect(
      provider.ingress(req(fixture('update.message.json'), 'guess'), channel),
    ).rejects.toMatchObject({ httpStatus: 401 });
    await expect(
      provider.ingress(providerRequest(fixture('update.message.json')), channel),
    ).rejects.toMatchObject({ httpStatus: 401 });
  });

  it('refuses an Update without update_id with 400, and ignores kinds it does not handle', async () => {
    await expect(provider.ingress(req('{"message":{}}'), channel)).rejects.toMatchObject({ httpStatus: 400 });
    const r = await provider.ingress(req('{"update_id":5,"edited_message":{"message_id":1}}'), channel);
    expect(r).toEqual({ messages: [], response: { status: 200 } });
  });
});

describe('sendMessage mapping', () => {
  it('turns choices into an inline keyboard, one button a row', () => {
    expect(toSendMessage(42, { text: 'Favourite colour?', choices: ['Red', 'Blue'] })).toEqual({
      chat_id: 42,
      text: 'Favourite colour?',
      reply_markup: {
        inline_keyboard: [[{ text: 'Red', callback_data: 'Red' }], [{ text: 'Blue', callback_data: 'Blue' }]],
      },
    });
  });

  it('keeps callback_data within 64 bytes and renders cards as escaped HTML', () => {
    const long = 'x'.repeat(70);
    const m = toSendMessage(1, {
      card: { title: 'A <b>', text: 'b & c', buttons: [long, { title: 'Docs', url: 'https://example.org' }] },
    })!;
    expect(m['parse_mode']).toBe('HTML');
    expect(m['text']).toBe('<b>A &lt;b&gt;</b>\nb &amp; c');
    expect(m['reply_markup']).toEqual({
      inline_keyboard: [
        [{ text: long, callback_data: '#0' }],
        [{ text: 'Docs', url: 'https://example.org' }],
      ],
    });
  });

  it('puts Adaptive Card Submit data in callback_data, stashing what does not fit, and never sends a plain value that looks like card data', () => {
    const card = {
      type: 'AdaptiveCard',
      body: [{ type: 'TextBlock', text: 'Pick', weight: 'Bolder' }],
      actions: [
        { type: 'Action.Submit', title: 'Short', data: { action: 'about_card' } },
        { type: 'Action.Submit', title: 'Long', data: { action: 'x'.repeat(80) } },
      ],
    };
    const stashed: Record<string, unknown>[] = [];
    const m = toSendMessage(1, { card, choices: ['~tilde'] }, (d) => {
      stashed.push(d);
      return '~#tok';
    })!;
    expect(m['text']).toBe('<b>Pick</b>');
    expect(m['reply_markup']).toEqual({
      inline_keyboard: [
        [{ text: 'Short', callback_data: '~?action=about_card' }],
        [{ text: 'Long', callback_data: '~#tok' }],
        [{ text: '~tilde', callback_data: '#2' }],
      ],
    });
    expect(stashed).toEqual([{ action: 'x'.repeat(80) }]);
    // Without a stash the long one falls back to its label (sent as an index: the label fits, the data did not).
    const bare = toSendMessage(1, { card })!;
    expect((bare['reply_markup'] as { inline_keyboard: unknown[][] }).inline_keyboard[1]).toEqual([
      { text: 'Long', callback_data: 'Long' },
    ]);
  });
});
