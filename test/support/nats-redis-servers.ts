import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { purgesUnackedOnRestart } from '../../src/messaging/nats/server-version.js';

/**
 * Real NATS and Redis for integration tests. The machine's shared servers (4222, 6379) are used
 * with names unique to the test run; tests that stop a server start their own on a spare port
 * and never touch the shared ones.
 */

export const SHARED_NATS_URL = process.env['TEST_NATS_URL'] ?? 'nats://127.0.0.1:4222';
export const SHARED_REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const NATS_SERVER_BIN = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';
const REDIS_SERVER_BIN = process.env['REDIS_SERVER_BIN'] ?? 'redis-server';

/** Stream and subject names no other test file (or run) uses. */
export function uniqueNatsNamespace(label: string): {
  GREENTIC_NATS_STREAM_PREFIX: string;
  GREENTIC_NATS_SUBJECT_PREFIX: string;
} {
  const id = `${label}${Date.now().toString(36)}${randomBytes(3).toString('hex')}`.replace(
    /[^A-Za-z0-9]/g,
    '',
  );
  return { GREENTIC_NATS_STREAM_PREFIX: `T_${id}`.toUpperCase(), GREENTIC_NATS_SUBJECT_PREFIX: `t${id}` };
}

/**
 * Config of an in-process app on the shared NATS (memory storage, short backoff, its own
 * namespace), quiet and on a free port; `extra` adds or overrides keys (sessions, partitions...).
 */
export function natsAppConfig(
  bundle: string,
  ns: ReturnType<typeof uniqueNatsNamespace>,
  extra: Record<string, string | number> = {},
): Record<string, string | number> {
  return {
    PORT: 0,
    GREENTIC_BUNDLE: bundle,
    LOG_LEVEL: 'silent',
    GREENTIC_BUS: 'nats',
    NATS_URL: SHARED_NATS_URL,
    GREENTIC_NATS_STORAGE: 'memory',
    GREENTIC_NATS_BACKOFF_MS: 100,
    ...ns,
    ...extra,
  };
}

export function uniqueRedisPrefix(label: string): string {
  return `test:${label}:${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/** Fails with a message saying what is missing, so an absent server never passes silently. */
export async function requireNats(url = SHARED_NATS_URL): Promise<void> {
  try {
    const nc = await connect({ servers: url, timeout: 2_000, reconnect: false });
    const jsm = await jetstreamManager(nc);
    await jsm.getAccountInfo();
    await nc.close();
  } catch (e) {
    throw new Error(
      `these tests need NATS with JetStream at ${url} (nats-server -js): ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** One connection for one question (no retries, no reconnects), closed after `use`. */
async function askRedis<T>(url: string, connectTimeout: number, use: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await use(r);
  } finally {
    r.disconnect();
  }
}

export async function requireRedis(url = SHARED_REDIS_URL): Promise<void> {
  try {
    await askRedis(url, 2_000, (r) => r.ping());
  } catch (e) {
    throw new Error(`these tests need Redis at ${url} (redis-server): ${(e as Error).message}`, { cause: e });
  }
}

/** Deletes the streams of a test namespace from a server (the shared one included). */
export async function deleteStreams(url: string, streamPrefix: string): Promise<void> {
  const nc = await connect({ servers: url, timeout: 2_000, reconnect: false }).catch(() => undefined);
  if (!nc) return;
  try {
    const jsm = await jetstreamManager(nc);
    for (const s of ['INGRESS', 'EGRESS', 'DLQ'])
      await jsm.streams.delete(`${streamPrefix}_${s}`).catch(() => undefined);
  } finally {
    await nc.close();
  }
}

/** Deletes a test's Redis keys by prefix. Test clean-up only: the runner never scans. */
export async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 10_000,
  proc?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // Exited: it could not listen (the port was taken meanwhile); a probe would find another server.
    if (proc && (proc.exitCode !== null || proc.signalCode !== null))
      throw new PortTakenError(`${what} exited before it was ready (${proc.exitCode ?? proc.signalCode})`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A private server's process ended before it answered: most likely its port was taken between freePort() and its start. */
class PortTakenError extends Error {}

/**
 * Starts a private server on a spare port with a fresh temp dir, on another port if it could not
 * listen: freePort() frees the port it found, so a test starting at the same moment can take it first.
 */
async function onSparePort<T extends { up(): Promise<void> }>(
  label: string,
  make: (port: number, dir: string) => T,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), `greentic-${label}-`));
    const server = make(await freePort(), dir);
    try {
      await server.up();
      return server;
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      if (!(e instanceof PortTakenError) || attempt >= 3) throw e;
    }
  }
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => p.once('exit', () => r()));
}

/** A private `nats-server -js` on a spare port, with its own store so it survives its own restarts. */
export class TestNatsServer {
  private proc?: ChildProcess;
  private log = '';
  /** Its `server_name`, which the readiness probe checks. */
  private readonly name = `greentic-test-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  /** The version it reported when it last came up. */
  version?: string;

  private constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<TestNatsServer> {
    if (!existsSync(NATS_SERVER_BIN))
      throw new Error(`nats-server not found at ${NATS_SERVER_BIN} (set NATS_SERVER_BIN)`);
    return onSparePort('nats', (port, dir) => new TestNatsServer(port, dir));
  }

  async up(): Promise<void> {
    this.proc = spawn(
      NATS_SERVER_BIN,
      ['-js', '-sd', this.storeDir, '-a', '127.0.0.1', '-p', String(this.port), '-n', this.name],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const keep = (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-4000);
    };
    this.proc.stdout?.on('data', keep);
    this.proc.stderr?.on('data', keep);
    const proc = this.proc;
    await waitFor(
      `nats-server on ${this.port}`,
      async () => {
        const nc = await connect({ servers: this.url, timeout: 500, reconnect: false });
        try {
          // Ours by name, not another test's server that took the port.
          if (nc.info?.server_name !== this.name) return false;
          await (await jetstreamManager(nc)).getAccountInfo();
          this.version = nc.info.version;
          return true;
        } finally {
          await nc.close();
        }
      },
      10_000,
      proc,
    ).catch((e: unknown) => {
      throw Object.assign(e as Error, { message: `${(e as Error).message}\n${this.log}` });
    });
  }

  /**
   * The ingress/egress retention a test that restarts this server runs the runner with: the
   * default (interest), unless this nats-server purges unacknowledged messages of interest streams
   * when it starts (before 2.9.16; Debian 12 ships 2.9.10), where the runner's docs say to use
   * limits. A loss that the broker causes is not the runner's to test.
   */
  get restartSafeRetention(): 'interest' | 'limits' {
    return purgesUnackedOnRestart(this.version) ? 'limits' : 'interest';
  }

  /** SIGTERM by default; SIGKILL to simulate a crash. */
  async down(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill(signal);
    await exited(p);
    this.proc = undefined;
  }

  /**
   * Freezes the server (SIGSTOP): its sockets stay open and nothing answers, as a broker stalled
   * by a long pause, a full disk or a saturated host looks to its clients. `resume()` thaws it.
   */
  pause(): void {
    if (!this.proc?.kill('SIGSTOP')) throw new Error('nats-server is not running');
  }

  resume(): void {
    if (!this.proc?.kill('SIGCONT')) throw new Error('nats-server is not running');
  }

  async stop(): Promise<void> {
    await this.down('SIGKILL');
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

/** A private `redis-server` on a spare port; append-only with fsync always, so a restart keeps data. */
export class TestRedisServer {
  private proc?: ChildProcess;

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<TestRedisServer> {
    return onSparePort('redis', (port, dir) => new TestRedisServer(port, dir));
  }

  async up(): Promise<void> {
    this.proc = spawn(
      REDIS_SERVER_BIN,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
      ],
      { stdio: 'ignore' },
    );
    this.proc.once('error', () => undefined);
    const proc = this.proc;
    await waitFor(
      `redis-server on ${this.port}`,
      // Ours by process id, not another test's server that took the port.
      () =>
        askRedis(this.url, 500, async (r) =>
          new RegExp(`^process_id:${proc.pid}\\r?$`, 'm').test(await r.info('server')),
        ),
      10_000,
      proc,
    );
  }

  async down(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill(signal);
    await exited(p);
    this.proc = undefined;
  }

  async stop(): Promise<void> {
    await this.down('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
