import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fakeChannel, fakeSecrets, providerRequest } from '../../../../test/support/fakes/channel-context.js';
import { ProviderAuthError } from '../messaging-provider.js';
import { toSlackMessage } from './slack-blocks.js';
import { slackSignature, verifySlackRequest } from './slack-signature.js';
import { SlackProvider } from './slack.provider.js';

const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const fixture = (name: string) => readFileSync(`test/fixtures/providers/slack/${name}`, 'utf8');

function signed(
  body: string,
  ts = Math.floor(Date.now() / 1000),
  extra: Record<string, string> = {},
  secret = SECRET,
) {
  return providerRequest(body, {
    'content-type': 'application/json',
    'x-slack-request-timestamp': String(ts),
    'x-slack-signature': slackSignature(secret, String(ts), body),
    ...extra,
  });
}

describe('Slack request signing', () => {
  it('matches the worked example of "Verifying requests from Slack"', () => {
    const body =
      'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
    expect(slackSignature(SECRET, '1531420618', body)).toBe(
      'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
    );
    expect(() => verifySlackRequest(signed(body, 1531420618), SECRET, 1531420618 + 10)).not.toThrow();
  });

  it('refuses a forged signature, a stale or future timestamp, and missing headers', () => {
    const body = fixture('event_callback.message_im.json');
    const now = Math.floor(Date.now() / 1000);
    expect(() => verifySlackRequest(signed(body, now, {}, 'another-secret'), SECRET)).toThrow(
      /signature mismatch/,
    );
    expect(() => verifySlackRequest(signed(body, now - 301), SECRET)).toThrow(/stale request/);
    expect(() => verifySlackRequest(signed(body, now + 301), SECRET)).toThrow(/stale request/);
    expect(() => verifySlackRequest(providerRequest(body), SECRET)).toThrow(ProviderAuthError);
    // One changed byte of the body breaks it.
    const req = signed(body, now);
    req.rawBody = Buffer.from(body.replace('Hello', 'Jello'));
    expect(() => verifySlackRequest(req, SECRET)).toThrow(/signature mismatch/);
  });
});

describe('SlackProvider ingress', () => {
  const provider = new SlackProvider(fakeSecrets({ signing_secret: SECRET, bot_token: 'xoxb-1' }));
  const channel = fakeChannel('slack');

  it('answers url_verification with the challenge as text', async () => {
    const r = await provider.ingress(signed(fixture('url_verification.json')), channel);
    expect(r.messages).toEqual([]);
    expect(r.response).toEqual({
      status: 200,
      headers: { 'content-type': 'text/plain' },
      body: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P',
    });
  });

  it('turns a message event into one message keyed by event id, with the channel as delivery hint', async () => {
    const r = await provider.ingress(signed(fixture('event_callback.message_im.json')), channel);
    expect(r.messages).toHaveLength(1);
    expect(r.messages[0]).toMatchObject({
      id: 'Ev123ABC456',
      conversationId: 'D024BE91L',
      userId: 'U2147483697',
      text: 'Hello hello can you hear me?',
      meta: { channel: 'D024BE91L', team: 'T123ABC456' },
    });
    expect(r.response).toEqual({ status: 200 });
  });

  it('ignores bot messages', async () => {
    const r = await provider.ingress(signed(fixture('event_callback.bot_message.json')), channel);
    expect(r).toEqual({ messages: [], response: { status: 200 } });
  });

  it('reads a block_actions click from the form-encoded payload', async () => {
    const body = new URLSearchParams({ payload: fixture('block_actions.json') }).toString();
    const r = await provider.ingress(
      signed(body, undefined, { 'content-type': 'application/x-www-form-urlencoded' }),
      channel,
    );
    expect(r.messages[0]).toMatchObject({
      id: '12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3',
      conversationId: 'CBR2V3XEX',
      userId: 'UA8RXUSPL',
      text: 'click_me_123',
      action: { type: 'block_actions', action_id: 'WaXA', value: 'click_me_123', label: 'View' },
    });
  });

  it('strips the bot mention of an app_mention and threads replies when asked', async () => {
    const ev = JSON.parse(fixture('event_callback.message_im.json')) as Record<
      string,
      Record<string, unknown>
    >;
    ev['event'] = {
      ...ev['event'],
      type: 'app_mention',
      channel: 'C111',
      channel_type: 'channel',
      text: '<@U0LAN0Z89> weather please',
    };
    const r = await provider.ingress(
      signed(JSON.stringify(ev)),
      fakeChannel('slack', { reply_in_thread: true }),
    );
    expect(r.messages[0]).toMatchObject({
      text: 'weather please',
      meta: { channel: 'C111', thread_ts: '1355517523.000005' },
    });
  });

  it('refuses malformed JSON with 400 after the signature holds', async () => {
    await expect(provider.ingress(signed('{nope'), channel)).rejects.toMatchObject({ httpStatus: 400 });
  });
});

describe('Block Kit mapping', () => {
  it('sends plain text as text only', () => {
    expect(toSlackMessage({ text: 'hi' })).toEqual({ text: 'hi' });
  });

  it('turns choices into an actions block of buttons', () => {
    const m = toSlackMessage({ text: 'Favourite colour?', choices: ['Red', 'Blue'] })!;
    expect(m.text).toBe('Favourite colour?');
    expect(m.blocks).toEqual([
      { type: 'section', text: { type: 'mrkdwn', text: 'Favourite colour?' } },
      {
        type: 'actions',
        block_id: 'greentic_choices',
        elements: [
          { type: 'button', action_id: 'choice_0', text: { type: 'plain_text', text: 'Red' }, value: 'Red' },
          {
            type: 'button',
            action_id: 'choice_1',
            text: { type: 'plain_text', text: 'Blue' },
            value: 'Blue',
          },
        ],
      },
    ]);
  });

  it('turns a card into header, section, image and buttons; passes Block Kit through', () => {
    const m = toSlackMessage({
      card: {
        title: 'Paris',
        text: 'Sunny, 24°C',
        image: 'https://example.org/sun.png',
        buttons: ['Again', { title: 'Docs', url: 'https://example.org' }],
      },
    })!;
    expect(m.blocks?.map((b) => b['type'])).toEqual(['header', 'section', 'image', 'actions']);
    expect((m.blocks?.[3]?.['elements'] as unknown[])[1]).toEqual({
      type: 'button',
      action_id: 'choice_1',
      text: { type: 'plain_text', text: 'Docs' },
      url: 'https://example.org',
    });
    // Section text is escaped for mrkdwn: no accidental links, mentions or entities.
    expect(toSlackMessage({ text: 'a <b> & <@U1>', choices: ['x'] })!.blocks![0]).toEqual({
      type: 'section',
      text: { type: 'mrkdwn', text: 'a &lt;b&gt; &amp; &lt;@U1&gt;' },
    });
    const native = [{ type: 'divider' }];
    expect(toSlackMessage({ text: 'x', card: { blocks: native } })).toEqual({ text: 'x', blocks: native });
  });
});
