import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from './support/nats-redis-servers.js';

/**
 * The real entry points (`src/main.ts`, and `greentic-runner start` for flags), started as
 * processes that fail to start: each failure is one stderr line naming the file, key or service,
 * with no stack and no Nest start-up logs before it, and exit code 1 (configuration) or 2 (a
 * dependency is unreachable). Unreachable services are closed ports on this machine.
 */
const ROOT = path.resolve(import.meta.dirname, '..');

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

// Two processes at a time: the cases run concurrently, but a loaded machine must not time them out.
let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function run(env: Record<string, string>, args: string[] = ['src/main.ts']): Promise<Exit> {
  return slot(() => spawnRunner(env, args));
}

function spawnRunner(env: Record<string, string>, args: string[]): Promise<Exit> {
  // The test runner's own GREENTIC_* variables must not leak into the child.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENTIC_')));
  const proc = spawn(process.execPath, ['--import', './test/support/ts-loader.mjs', ...args], {
    cwd: ROOT,
    env: { ...base, NODE_ENV: 'production', LOG_LEVEL: 'info', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 120_000);
  return new Promise((resolve) =>
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l.length > 0);
}

/** Nothing but the expected lines: no stack frames, no Nest or pino log lines. */
function expectOnly(r: Exit, code: number, expected: (string | RegExp)[]): void {
  const detail = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  expect(r.code, detail).toBe(code);
  expect(r.stdout, detail).toBe('');
  const got = lines(r.stderr);
  expect(got.length, detail).toBe(expected.length);
  expected.forEach((e, i) => {
    if (typeof e === 'string') expect(got[i], detail).toBe(e);
    else expect(got[i], detail).toMatch(e);
  });
  expect(r.stderr, detail).not.toMatch(/^\s+at /m);
}

function badBundle(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-startup-'));
  const file = path.join(dir, 'bundle.yaml');
  writeFileSync(
    file,
    'tenants:\n  demo:\n    envs:\n      dev:\n        teams:\n          default:\n            channels:\n              web: { pack: demo, flow: x }\n',
  );
  return file;
}

// Concurrent: each case is a separate process, and most of their time is loading the sources.
describe.concurrent('start-up failures read like a tool', { timeout: 300_000 }, () => {
  it('a bundle path that does not exist: the file, exit 1', async () => {
    const missing = path.join(os.tmpdir(), 'greentic-no-such-dir', 'bundle.yaml');
    const r = await run({ GREENTIC_BUNDLE: missing });
    expectOnly(r, 1, [
      `greentic-runner: bundle ${missing}: cannot read: ENOENT: no such file or directory, open '${missing}'`,
    ]);
  });

  it('a bundle missing a key: file:line:col and the key, exit 1', async () => {
    const file = badBundle();
    const r = await run({ GREENTIC_BUNDLE: file });
    expectOnly(r, 1, [
      `greentic-runner: ${file}:8:20: key 'tenants.demo.envs.dev.teams.default.channels.web.provider': expected a value (required)`,
    ]);
  });

  it('PORT=abc names the value as given, exit 1', async () => {
    const r = await run({ PORT: 'abc' });
    expectOnly(r, 1, ['greentic-runner: PORT="abc": must be an integer number']);
  });

  it('--port abc on `greentic-runner start` reads the same', async () => {
    const r = await run({}, ['src/cli/greentic-runner/main.ts', 'start', '--port', 'abc']);
    expectOnly(r, 1, ['greentic-runner: PORT="abc": must be an integer number']);
  });

  it('warns about a mistyped GREENTIC_ variable with the closest known name', async () => {
    // PORT=abc so that the process stops right after the warnings.
    const r = await run({
      GREENTIC_BUSS: 'nats',
      GREENTIC_SESION_LEASE_MS: '5000',
      GREENTIC_PORT: '1',
      PORT: 'abc',
    });
    expectOnly(r, 1, [
      'greentic-runner: warning: unknown variable GREENTIC_BUSS (did you mean GREENTIC_BUS?), ignored',
      'greentic-runner: warning: unknown variable GREENTIC_PORT, ignored',
      'greentic-runner: warning: unknown variable GREENTIC_SESION_LEASE_MS (did you mean GREENTIC_SESSION_LEASE_MS?), ignored',
      'greentic-runner: PORT="abc": must be an integer number',
    ]);
  });

  it('NATS on a closed port: which service, at what URL, exit 2', async () => {
    const port = await freePort();
    const r = await run({ GREENTIC_BUS: 'nats', NATS_URL: `nats://127.0.0.1:${port}` });
    expectOnly(r, 2, [
      `greentic-runner: cannot connect to NATS at nats://127.0.0.1:${port} (GREENTIC_BUS=nats): connection refused`,
    ]);
  });

  it('Redis on a closed port: which service, at what URL, exit 2', async () => {
    const port = await freePort();
    const r = await run({ GREENTIC_SESSIONS: 'redis', REDIS_URL: `redis://127.0.0.1:${port}` });
    // Sessions, timers and rate limits connect concurrently; whichever fails first is reported.
    expectOnly(r, 2, [
      new RegExp(
        `^greentic-runner: (timers: |rate limits: )?cannot connect to Redis at redis://127\\.0\\.0\\.1:${port} \\(GREENTIC_SESSIONS=redis\\): connection refused$`,
      ),
    ]);
  });

  it('--log-level debug shows the start-up logs and the stack as well', async () => {
    const port = await freePort();
    const r = await run({ NATS_URL: `nats://127.0.0.1:${port}` }, [
      'src/cli/greentic-runner/main.ts',
      'start',
      '--bus',
      'nats',
      '--log-level',
      'debug',
    ]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout + r.stderr).toContain('Starting Nest application');
    expect(r.stderr).toContain(
      `greentic-runner: cannot connect to NATS at nats://127.0.0.1:${port} (GREENTIC_BUS=nats): connection refused`,
    );
    expect(r.stderr).toMatch(/^\s+at /m);
  });
});
