import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface FakeResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export type FakeHandler = (req: FakeRequest) => FakeResponse | Promise<FakeResponse>;

/**
 * A local HTTP(S) server for a test double. `down = true` makes it drop every connection as soon
 * as it is accepted, which is what a client sees when a service becomes unreachable mid-run.
 */
export class FakeServer {
  readonly requests: FakeRequest[] = [];
  down = false;
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly handler: FakeHandler,
    tls?: { key: string; cert: string },
  ) {
    const listener = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    this.server = tls
      ? https.createServer({ key: tls.key, cert: tls.cert }, listener)
      : http.createServer(listener);
    const track = (s: Socket) => {
      if (this.down) {
        s.destroy();
        return;
      }
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    };
    this.server.on(tls ? 'secureConnection' : 'connection', track);
    if (tls) this.server.on('connection', (s: Socket) => this.down && s.destroy());
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Count of requests whose path matches. */
  count(pathPattern: RegExp): number {
    return this.requests.filter((r) => pathPattern.test(r.path)).length;
  }

  /** Takes the service offline: open keep-alive connections are cut too. */
  setDown(down: boolean): void {
    this.down = down;
    if (down) for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.down) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake');
    const fr: FakeRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      path: decodeURIComponent(url.pathname),
      query: url.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks),
    };
    this.requests.push(fr);
    let out: FakeResponse;
    try {
      out = await this.handler(fr);
    } catch (e) {
      out = { status: 500, body: { fakeError: (e as Error).message } };
    }
    const body =
      out.body === undefined ? '' : typeof out.body === 'string' ? out.body : JSON.stringify(out.body);
    const headers: Record<string, string> = { ...(out.headers ?? {}) };
    if (out.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
    res.writeHead(out.status, headers);
    res.end(body);
  }
}
