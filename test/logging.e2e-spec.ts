import { spawn } from 'node:child_process';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './support/nats-redis-servers.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * Log format (issue #22 item 3): the runner as a process, started by `src/main.ts` as deployed.
 * LOG_FORMAT defaults to pretty on a terminal and JSON on a pipe; Nest's route-mapping lines are
 * debug, not info. Each run starts, serves one request, and stops on SIGTERM.
 */

const ROOT = path.resolve(import.meta.dirname, '..');
const BUNDLE = writeTempBundle({
  packs: [
    {
      id: 'hello',
      flows: { 'hello.ygtc': 'id: hello\ntype: messaging\nnodes:\n  a:\n    reply: { text: hi }\n' },
    },
  ],
  tenants: { acme: { packs: ['hello'], channels: { web: { pack: 'hello', flow: 'hello' } } } },
});
const started: number[] = [];

/** Runs the runner until it listens, then SIGTERM; answers everything it printed. */
async function runOnce(env: Record<string, string>, opts: { tty?: boolean } = {}): Promise<string> {
  const port = await freePort();
  const argv = [process.execPath, '--import', './test/support/ts-loader.mjs', 'src/main.ts'];
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  // util-linux `script` gives the runner a pseudo-terminal as stdout: -q quiet, -f flush, -e exit code.
  const [cmd, args] = opts.tty ? ['script', ['-qfec', quoted, '/dev/null']] : [argv[0]!, argv.slice(1)];
  const proc = spawn(cmd, args, {
    cwd: ROOT,
    // Its own process group, so SIGTERM reaches the runner under `script` too.
    detached: true,
    env: {
      ...process.env,
      NODE_ENV: 'production',
      TERM: 'xterm',
      GREENTIC_BUNDLE: BUNDLE,
      GREENTIC_COMPONENT_POOL_MIN: '0',
      LOG_LEVEL: 'info',
      PORT: String(port),
      HOST: '127.0.0.1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(proc.pid!);
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const deadline = Date.now() + 90_000;
  while (!/greentic runner listening/.test(out)) {
    if (proc.exitCode !== null || Date.now() > deadline)
      throw new Error(`the runner did not start (exit ${proc.exitCode}):\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const res = await fetch(`http://127.0.0.1:${port}/webhooks/webhook/acme/dev/default/web?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'ada', text: 'hello' }),
  });
  expect(res.status).toBe(200);
  process.kill(-proc.pid!, 'SIGTERM');
  await exited;
  return out;
}

afterAll(() => {
  for (const pid of started) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** The runner's lines: `script` adds its own when the session ends ("Session terminated, ..."). */
const lines = (out: string) =>
  out.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('Session terminated'));

interface LogRecord {
  level: number;
  msg: string;
  context?: string;
}

describe('LOG_FORMAT', () => {
  it('defaults to JSON when stdout is a pipe, with no route-mapping lines at info', async () => {
    const out = await runOnce({});
    const records = lines(out).map((l) => JSON.parse(l) as LogRecord);
    expect(records.find((r) => r.msg.startsWith('greentic runner listening on'))).toMatchObject({
      level: 30,
      context: 'Main',
    });
    expect(records.map((r) => r.context)).not.toContain('RouterExplorer');
    expect(records.map((r) => r.context)).not.toContain('RoutesResolver');
    expect(out).not.toMatch(/Mapped \{/);
  });

  it('keeps the route-mapping lines at debug', async () => {
    const records = lines(await runOnce({ LOG_LEVEL: 'debug' })).map((l) => JSON.parse(l) as LogRecord);
    const mapped = records.filter((r) => r.context === 'RouterExplorer');
    expect(mapped.map((r) => r.msg)).toContain('Mapped {/health, GET} route');
    expect(new Set(mapped.map((r) => r.level))).toEqual(new Set([20]));
  });

  it('LOG_FORMAT=pretty on a pipe: one readable line per event, no JSON', async () => {
    const out = await runOnce({ LOG_FORMAT: 'pretty' });
    const all = lines(out);
    expect(all.some((l) => l.trimStart().startsWith('{'))).toBe(false);
    // No colours off a terminal; the context leads the message, fields follow on the same line.
    expect(out).not.toContain('\u001b[');
    expect(all).toContainEqual(
      expect.stringMatching(
        /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Main: greentic runner listening on http:\/\/127\.0\.0\.1:\d+ \{"url":/,
      ),
    );
    expect(all).toContainEqual(
      expect.stringMatching(/INFO: PackRegistry: pack loaded \{"tenant":"acme","pack":"hello",/),
    );
  });

  it('defaults to pretty when stdout is a terminal', async () => {
    const out = await runOnce({}, { tty: true });
    // Coloured on a terminal; strip the escapes to read the text.
    expect(out).toContain('\u001b[');
    const plain = lines(stripVTControlCharacters(out));
    expect(plain).toContainEqual(expect.stringMatching(/INFO: Main: greentic runner listening on http:/));
    expect(plain.some((l) => l.trimStart().startsWith('{"level"'))).toBe(false);
  });

  it('LOG_FORMAT=json on a terminal: JSON anyway', async () => {
    const out = await runOnce({ LOG_FORMAT: 'json' }, { tty: true });
    const records = lines(out).map((l) => JSON.parse(l) as LogRecord);
    expect(records.map((r) => r.msg)).toContainEqual(expect.stringMatching(/^greentic runner listening on/));
  });
});
