import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from './nats-redis-servers.js';

/**
 * A runner replica in its own process: `node --import test/support/ts-loader.mjs src/main.ts`
 * (the TypeScript sources, compiled per file by SWC), configured only through environment
 * variables, exactly like a deployed replica. Set RUNNER_DIST=1 to run the compiled
 * `dist/main.js` instead (after `npm run build`). Used where a test must kill a replica for real
 * (`kill -9`) or send it SIGTERM.
 */
export class RunnerProcess {
  private output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly proc: ChildProcess,
  ) {
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** The last lines the process printed (pino JSON logs), for failure messages. */
  get log(): string {
    return this.output;
  }

  static async start(
    name: string,
    env: Record<string, string | number>,
    readyTimeoutMs = 90_000,
  ): Promise<RunnerProcess> {
    const port = await freePort();
    const root = path.resolve(import.meta.dirname, '..', '..');
    const args =
      process.env['RUNNER_DIST'] === '1'
        ? ['dist/main.js']
        : ['--import', './test/support/ts-loader.mjs', 'src/main.ts'];
    const proc = spawn(process.execPath, args, {
      cwd: root,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
        PORT: String(port),
        HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r = new RunnerProcess(name, port, proc);
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const gone = await Promise.race([
        r.exited,
        new Promise<null>((res) => setTimeout(() => res(null), 200)),
      ]);
      if (gone)
        throw new Error(`runner ${name} exited (${JSON.stringify(gone)}) before it was ready:\n${r.log}`);
      const ok = await fetch(`${r.url}/health`).then(
        (res) => res.status === 200,
        () => false,
      );
      if (ok) return r;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`runner ${name} not ready within ${readyTimeoutMs} ms:\n${r.log}`);
      }
    }
  }

  /**
   * Every complete line the process prints from now on (stdout and stderr, each split on its own),
   * e.g. to parse its JSON log lines; `log` keeps only the tail.
   */
  onLine(listener: (line: string) => void): void {
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      let partial = '';
      stream?.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const line of lines) listener(line);
      });
    }
  }

  /** `kill -9` by default: no shutdown hooks, no drain, connections just drop. */
  async kill(
    signal: NodeJS.Signals = 'SIGKILL',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}
