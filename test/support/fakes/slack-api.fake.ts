import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FakeServer, type FakeRequest, type FakeResponse } from './fake-server.js';

const POST_MESSAGE_RESPONSE = JSON.parse(
  readFileSync(path.resolve('test/fixtures/providers/slack/chat.postMessage.response.json'), 'utf8'),
) as Record<string, unknown>;

/**
 * Slack Web API on 127.0.0.1: `POST /api/chat.postMessage` as the method reference describes it
 * (Bearer token, form-encoded arguments, `{ ok, channel, ts, message }`; `invalid_auth`,
 * `channel_not_found` and `no_text` errors with HTTP 200; 429 with Retry-After when scripted).
 */
export class SlackApiFake {
  readonly server: FakeServer;
  /** Responses served before the normal ones, e.g. a 429. */
  readonly script: FakeResponse[] = [];
  private readonly delivered: FakeRequest[] = [];
  private seq = 0;

  constructor(readonly botToken: string) {
    this.server = new FakeServer((req) => this.handle(req));
  }

  async start(): Promise<this> {
    await this.server.listen();
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}/api/`;
  }

  /** chat.postMessage calls that succeeded (`ok: true`), their form arguments decoded. */
  posts(): { req: FakeRequest; args: Record<string, string> }[] {
    return this.delivered.map((req) => ({
      req,
      args: Object.fromEntries(new URLSearchParams(req.body.toString('utf8'))),
    }));
  }

  /** Every chat.postMessage attempt, refused ones included. */
  attempts(): FakeRequest[] {
    return this.server.requests.filter((r) => r.path === '/api/chat.postMessage');
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private handle(req: FakeRequest): FakeResponse {
    const scripted = this.script.shift();
    if (scripted) return scripted;
    if (req.method !== 'POST' || req.path !== '/api/chat.postMessage')
      return { status: 404, body: { ok: false, error: 'unknown_method' } };
    if (req.headers['authorization'] !== `Bearer ${this.botToken}`)
      return { status: 200, body: { ok: false, error: 'invalid_auth' } };
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
      return { status: 200, body: { ok: false, error: 'invalid_form_data' } };
    }
    const args = Object.fromEntries(new URLSearchParams(req.body.toString('utf8')));
    if (!args['channel']) return { status: 200, body: { ok: false, error: 'channel_not_found' } };
    if (!args['text'] && !args['blocks']) return { status: 200, body: { ok: false, error: 'no_text' } };
    const ts = `1503435956.${String(++this.seq).padStart(6, '0')}`;
    this.delivered.push(req);
    return {
      status: 200,
      body: {
        ...POST_MESSAGE_RESPONSE,
        channel: args['channel'],
        ts,
        message: { ...(POST_MESSAGE_RESPONSE['message'] as object), text: args['text'], ts },
      },
    };
  }
}
