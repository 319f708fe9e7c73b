import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FakeServer, type FakeRequest, type FakeResponse } from './fake-server.js';

const MESSAGES_RESPONSE = JSON.parse(
  readFileSync(path.resolve('test/fixtures/providers/whatsapp/messages.response.json'), 'utf8'),
) as Record<string, unknown>;

/**
 * WhatsApp Cloud API (Graph) on 127.0.0.1: `POST /{version}/{phone-number-id}/messages` with a
 * Bearer access token, answering the documented `{ messaging_product, contacts, messages }`;
 * Graph errors (`{ error: { message, type, code } }`) for a bad token (190) or payload (100).
 */
export class WhatsAppApiFake {
  readonly server: FakeServer;
  readonly script: FakeResponse[] = [];
  private readonly delivered: FakeRequest[] = [];
  private seq = 0;

  constructor(
    readonly accessToken: string,
    readonly phoneNumberId: string,
    readonly version = 'v21.0',
  ) {
    this.server = new FakeServer((req) => this.handle(req));
  }

  async start(): Promise<this> {
    await this.server.listen();
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  /** messages calls answered 200. */
  sends(): { req: FakeRequest; body: Record<string, unknown> }[] {
    return this.delivered.map((req) => ({
      req,
      body: JSON.parse(req.body.toString('utf8')) as Record<string, unknown>,
    }));
  }

  attempts(): FakeRequest[] {
    return this.server.requests.filter((r) => r.path.endsWith('/messages'));
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private graphError(status: number, code: number, message: string): FakeResponse {
    return { status, body: { error: { message, type: 'OAuthException', code, fbtrace_id: 'AbCdEf' } } };
  }

  private handle(req: FakeRequest): FakeResponse {
    const scripted = this.script.shift();
    if (scripted) return scripted;
    if (req.method !== 'POST' || req.path !== `/${this.version}/${this.phoneNumberId}/messages`) {
      return this.graphError(400, 100, 'Unsupported post request.');
    }
    if (req.headers['authorization'] !== `Bearer ${this.accessToken}`)
      return this.graphError(401, 190, 'Invalid OAuth access token.');
    const body = JSON.parse(req.body.toString('utf8')) as Record<string, unknown>;
    if (body['messaging_product'] !== 'whatsapp' || typeof body['to'] !== 'string') {
      return this.graphError(400, 100, '(#100) Invalid parameter');
    }
    this.delivered.push(req);
    return {
      status: 200,
      body: {
        ...MESSAGES_RESPONSE,
        contacts: [{ input: body['to'], wa_id: body['to'] }],
        messages: [{ id: `wamid.fake${++this.seq}` }],
      },
    };
  }
}
