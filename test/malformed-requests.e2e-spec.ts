import { Logger } from '@nestjs/common';
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import {
  everyProviderChannel,
  QUESTION,
  startProviderApp,
  WELCOME,
  type ProviderApp,
} from './support/fakes/provider-harness.js';
import { SlackApiFake } from './support/fakes/slack-api.fake.js';
import { TeamsApiFake } from './support/fakes/teams-api.fake.js';
import { TelegramApiFake } from './support/fakes/telegram-api.fake.js';
import { WhatsAppApiFake } from './support/fakes/whatsapp-api.fake.js';

/**
 * A sweep of malformed requests over every route a runner serves, with every provider's channel
 * configured so each parser is reached (not refused at an unknown channel): bad and truncated
 * JSON, wrong types, prototype keys, control bytes, a BOM, UTF-16, multipart and form bodies,
 * an oversized id, each with forged signature headers, under several methods; then raw sockets
 * sending what no HTTP client library would (a short body, a broken chunk, a bad escape in an
 * upgrade). Every answer is a 4xx with the JSON error shape, nothing is logged as an internal
 * error, no rejection goes unhandled, and the runner still answers conversations afterwards.
 */

const SLACK_BOT = 'xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy';
const TEAMS_APP_ID = '8e0b0c2a-1111-4c6e-9d3b-5a7c3e1f0a11';
const TEAMS_PASSWORD = 'bot-framework-client-secret';
const TG_BOT = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const WA_TOKEN = 'EAAJB2x8ZAx4cBAFake';
const WA_PHONE = '106540352242922';
const DL_SECRET = 'dl-secret-for-acme-sweep-0123456789';
const DL = '/webchat/acme/dev/default/webchat/v3/directline';

const PATHS = [
  '/webhooks/webhook/acme/dev/default/web',
  '/webhooks/webhook/acme/dev/default/web?wait=true',
  '/webhooks/slack/acme/dev/default/slack',
  '/webhooks/teams/acme/dev/default/teams',
  '/webhooks/telegram/acme/dev/default/telegram',
  '/webhooks/whatsapp/acme/dev/default/whatsapp',
  '/webhooks/webchat/acme/dev/default/webchat',
  '/webhooks/nosuch/acme/dev/default/web',
  '/webhooks/webhook/nobody/dev/default/web',
  '/webhooks/webhook/acme/dev/default/%E0%A4%A',
  `/webhooks/webhook/acme/dev/default/${'x'.repeat(2_000)}`,
  `${DL}/tokens/generate`,
  `${DL}/tokens/refresh`,
  `${DL}/conversations`,
  `${DL}/conversations/%E0%A4%A/activities`,
  `${DL}/conversations/nope/activities?watermark=-1`,
  '/v3/directline/conversations',
  '/webchat/acme/dev/default/webchat/token',
  '/admin/tenants',
  '/admin/packs/reload',
  '/health',
  '/metrics',
];

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'];

const BIG_ID = 'i'.repeat(100_000);
/** [content-type, body]: each is wrong in its own way. */
const BODIES: [string | undefined, string | Buffer][] = [
  ['application/json', ''],
  ['application/json', '{'],
  ['application/json', '{"userId":"u","text":'],
  ['application/json', 'null'],
  ['application/json', '[]'],
  ['application/json', '"just a string"'],
  ['application/json', '12345'],
  ['application/json', '{"userId":123,"text":{"$gt":""},"messageId":[]}'],
  ['application/json', '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}'],
  ['application/json', '{"userId":"u\u0000\u0007","text":"\u001b[2J\ud800"}'],
  [
    'application/json',
    Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"userId":"u","text":"hi"}')]),
  ],
  ['application/json', Buffer.from('{"userId":"u","text":"hi"}', 'utf16le')],
  ['application/json', JSON.stringify({ userId: BIG_ID, text: 'hi', messageId: BIG_ID })],
  ['application/x-www-form-urlencoded', 'payload=%7B%22type%22%3A&x=%E0%A4%A'],
  ['multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--xy'],
  ['text/plain', 'hello'],
  [undefined, '{"userId":"u","text":"hi"}'],
];

/** Signature and auth headers that look right and are not. */
const FORGED: Record<string, string> = {
  'x-slack-signature': 'v0=' + '0'.repeat(64),
  'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000)),
  'x-telegram-bot-api-secret-token': 'not-the-secret',
  'x-hub-signature-256': 'sha256=' + 'f'.repeat(64),
  authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
};

interface Answer {
  what: string;
  status: number;
  body: string;
}

let h: ProviderApp;
let slack: SlackApiFake;
let bf: TeamsApiFake;
let tg: TelegramApiFake;
let wa: WhatsAppApiFake;
let errors: MockInstance<Logger['error']>;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

beforeAll(async () => {
  slack = await new SlackApiFake(SLACK_BOT).start();
  bf = await new TeamsApiFake(TEAMS_APP_ID, TEAMS_PASSWORD).start();
  tg = await new TelegramApiFake(TG_BOT).start();
  wa = await new WhatsAppApiFake(WA_TOKEN, WA_PHONE).start();
  h = await startProviderApp({
    ...everyProviderChannel(
      { slack, teams: bf, telegram: tg, whatsapp: wa },
      {
        slackSigning: '8f742231b10e8888abcd99yyyzzz85a5',
        telegramWebhook: 'Tg_secret-token_0123456789',
        whatsappAppSecret: 'c0ffee5ecret0fthewhatsappapp',
        directLine: DL_SECRET,
      },
    ),
    config: { GREENTIC_WEBCHAT_DEFAULT_CHANNEL: 'acme/dev/default/webchat' },
  });
  errors = vi.spyOn(Logger.prototype, 'error');
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUnhandled);
  errors?.mockRestore();
  await h?.close();
  await Promise.all([slack?.close(), bf?.close(), tg?.close(), wa?.close()]);
});

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** What a raw socket gets back for `request` (the status line's code, or 0 if it was closed unanswered). */
function raw(request: string | Buffer, endAfterMs = 300): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(h.url);
  return new Promise((resolve, reject) => {
    const s = tcpConnect(Number(port), hostname, () => {
      s.write(request);
      setTimeout(() => s.end(), endAfterMs);
    });
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (text += d));
    s.on('error', reject);
    s.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
  });
}

describe('malformed requests over every route', () => {
  it('answers each with a 4xx in the JSON error shape, logs no internal error, and leaves nothing unhandled', async () => {
    const cases = PATHS.flatMap((path) =>
      METHODS.flatMap((method) =>
        (method === 'GET' || method === 'DELETE' ? BODIES.slice(0, 1) : BODIES).map(([type, body], b) => ({
          path,
          method,
          type,
          body,
          what: `${method} ${path.slice(0, 80)} body#${b}`,
        })),
      ),
    );
    const answers: Answer[] = [];
    await pool(cases, 8, async (c) => {
      const headers: Record<string, string> = { ...FORGED };
      if (c.type) headers['content-type'] = c.type;
      const res = await fetch(h.url + c.path, {
        method: c.method,
        headers,
        body: c.method === 'GET' || c.method === 'DELETE' ? undefined : c.body,
      });
      answers.push({ what: c.what, status: res.status, body: await res.text() });
    });

    expect(answers).toHaveLength(cases.length);
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    // Refusals say what was wrong, in one shape (metrics and the health probe answer their own way).
    const refusals = answers.filter((a) => a.status >= 400 && !/ \/(health|metrics)/.test(a.what));
    expect(refusals.length).toBeGreaterThan(cases.length / 2);
    const unshaped = refusals.filter((a) => {
      try {
        const code = (JSON.parse(a.body) as { error?: { code?: unknown } }).error?.code;
        return typeof code !== 'string' || code.length === 0;
      } catch {
        return true;
      }
    });
    expect(unshaped.map((a) => `${a.what} → ${a.status} ${a.body.slice(0, 120)}`)).toEqual([]);
    // Refused by the router before any route runs, in the same shape, logged with the path's tenant.
    const codes = (needle: string) =>
      new Set(answers.filter((a) => a.what.includes(needle)).map((a) => `${a.status} ${a.body}`));
    expect(codes('%E0%A4%A')).toEqual(
      new Set(['400 {"error":{"code":"bad_url","message":"the path is not valid percent-encoding"}}']),
    );
    expect(codes('xxxxxxxx')).toEqual(
      new Set([
        '414 {"error":{"code":"path_segment_too_long","message":"a path segment is longer than the router accepts"}}',
      ]),
    );
    for (const code of ['bad_url', 'path_segment_too_long'])
      expect(h.warnings().some((w) => w.obj['code'] === code && w.obj['tenant'] === 'acme')).toBe(true);
    // Nothing was signed with a provider's secret: no provider message reached the bus.
    const accepted = h.accepted.mock.calls.map((c) => c[0].channel.provider);
    expect(accepted.filter((p) => p !== 'webhook')).toEqual([]);
    expect(errors.mock.calls).toEqual([]);
    expect(unhandled).toEqual([]);
  }, 120_000);

  it('answers or closes what a client library would never send, and logs no internal error', async () => {
    const host = new URL(h.url).host;
    const webhook = '/webhooks/webhook/acme/dev/default/web';
    // A body shorter than its Content-Length, then the client goes quiet and closes.
    const short = await raw(
      `POST ${webhook} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"userId":"u"`,
    );
    // A chunk size that is not hexadecimal: Node's parser refuses it.
    const chunk = await raw(
      `POST ${webhook} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
    );
    // Both framings at once (request smuggling's shape).
    const both = await raw(
      `POST ${webhook} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    );
    // A WebSocket upgrade to a Direct Line stream whose conversation id is a broken escape.
    const upgrade = await raw(
      `GET ${DL}/conversations/%E0%A4%A/stream?t=x HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    // A request line with a bare control byte in the path.
    const control = await raw(`GET /health\u0001 HTTP/1.1\r\nHost: ${host}\r\n\r\n`);

    for (const [what, r] of Object.entries({ short, chunk, both, upgrade, control }))
      expect(r.status === 0 || (r.status >= 400 && r.status < 500), `${what}: ${r.text.slice(0, 200)}`).toBe(
        true,
      );
    expect(chunk.status).toBe(400);
    expect(upgrade.status).toBe(400);
    expect(errors.mock.calls).toEqual([]);
    expect(unhandled).toEqual([]);
  });

  it('still answers conversations afterwards: the generic webhook, Direct Line, and /health', async () => {
    const ask = (text: string) =>
      fetch(`${h.url}/webhooks/webhook/acme/dev/default/web?wait=true`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'after-sweep', text }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { replies: { text: string }[] } }));
    const first = await ask('hi');
    expect(first.status).toBe(200);
    expect(first.body.replies.map((r) => r.text)).toEqual([WELCOME, QUESTION]);

    const conv = await fetch(`${h.url}${DL}/conversations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DL_SECRET}` },
    });
    expect(conv.status).toBe(201);
    expect(((await conv.json()) as { conversationId: string }).conversationId).toMatch(/\S/);

    const health = await fetch(`${h.url}/health`);
    expect(health.status).toBe(200);
    expect(errors.mock.calls).toEqual([]);
    expect(unhandled).toEqual([]);
  });
});
