import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FakeServer, type FakeRequest, type FakeResponse } from './fake-server.js';

const SEND_RESPONSE = JSON.parse(
  readFileSync(path.resolve('test/fixtures/providers/telegram/sendMessage.response.json'), 'utf8'),
) as {
  ok: true;
  result: Record<string, unknown>;
};

/**
 * Telegram Bot API on 127.0.0.1: `POST /bot{token}/sendMessage` with a JSON body, answering
 * `{ ok: true, result: Message }`, 401 for another token, 400 for a missing chat_id or text, and
 * scripted answers (a 429 with `parameters.retry_after`) first.
 */
export class TelegramApiFake {
  readonly server: FakeServer;
  readonly script: FakeResponse[] = [];
  private readonly delivered: FakeRequest[] = [];
  private seq = 2000;

  constructor(readonly botToken: string) {
    this.server = new FakeServer((req) => this.handle(req));
  }

  async start(): Promise<this> {
    await this.server.listen();
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  /** sendMessage calls answered `ok: true`. */
  sends(): { req: FakeRequest; body: Record<string, unknown> }[] {
    return this.delivered.map((req) => ({
      req,
      body: JSON.parse(req.body.toString('utf8')) as Record<string, unknown>,
    }));
  }

  attempts(): FakeRequest[] {
    return this.server.requests.filter((r) => r.path.endsWith('/sendMessage'));
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private handle(req: FakeRequest): FakeResponse {
    const scripted = this.script.shift();
    if (scripted) return scripted;
    const m = /^\/bot([^/]+)\/sendMessage$/.exec(req.path);
    if (!m || req.method !== 'POST')
      return { status: 404, body: { ok: false, error_code: 404, description: 'Not Found' } };
    if (m[1] !== this.botToken)
      return { status: 401, body: { ok: false, error_code: 401, description: 'Unauthorized' } };
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(req.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return {
        status: 400,
        body: { ok: false, error_code: 400, description: 'Bad Request: message text is empty' },
      };
    }
    if (body['chat_id'] === undefined)
      return {
        status: 400,
        body: { ok: false, error_code: 400, description: 'Bad Request: chat_id is empty' },
      };
    if (typeof body['text'] !== 'string' || body['text'] === '') {
      return {
        status: 400,
        body: { ok: false, error_code: 400, description: 'Bad Request: message text is empty' },
      };
    }
    this.delivered.push(req);
    return {
      status: 200,
      body: {
        ok: true,
        result: {
          ...SEND_RESPONSE.result,
          message_id: ++this.seq,
          chat: { ...(SEND_RESPONSE.result['chat'] as object), id: body['chat_id'] },
          text: body['text'],
        },
      },
    };
  }
}
