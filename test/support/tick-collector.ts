import http from 'node:http';

/** One timer callback: what the timer provider posts for a tick's replies. */
export interface TickCallback {
  timer: string;
  tick: string;
  status: string;
  replies: { text?: string }[];
  receivedAt: number;
}

/**
 * A local HTTP endpoint standing in for a timer's `callback_url`: records every post, so tests can
 * count executions by tick id.
 */
export class TickCollector {
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    readonly calls: TickCallback[],
  ) {}

  static async start(): Promise<TickCollector> {
    const calls: TickCallback[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        try {
          calls.push({ ...(JSON.parse(body) as Omit<TickCallback, 'receivedAt'>), receivedAt: Date.now() });
          res.writeHead(200).end('{}');
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    return new TickCollector(server, `http://127.0.0.1:${port}/ticks`, calls);
  }

  /** Resolves once `n` callbacks satisfy `pred`; fails with what arrived when they do not in time. */
  async waitFor(pred: (c: TickCallback[]) => boolean, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred(this.calls)) {
      if (Date.now() > end)
        throw new Error(
          `${what}: not seen within ${timeoutMs} ms; received:\n${this.calls.map((c) => `${c.tick} ${c.replies[0]?.text ?? ''}`).join('\n')}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** The ISO time of a tick id `timer:<id>:<iso>`. */
export function tickTime(tickId: string): number {
  return Date.parse(tickId.slice(tickId.indexOf(':', 6) + 1));
}
