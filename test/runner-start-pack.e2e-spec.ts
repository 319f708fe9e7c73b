/**
 * `greentic-runner start --pack FILE`: the real CLI in its own process serves a pack built by this
 * project's `greentic-pack build`, with no bundle file. Tenant `local`, env `dev`, team `default`;
 * channel `web` (generic webhook) and `webchat` (the runner's chat page), both bound to the pack's
 * messaging flow; the dev trust policy, announced by a warning line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as runPackCli } from '../src/cli/greentic-pack/cli.js';
import { replyFlow, watComponent, writePackDir } from './fixtures/packs/pack-fixtures.js';
import { ARTIFACTS, bubble, launchChromium, say } from './support/webchat-browser.js';

const ROOT = path.resolve(import.meta.dirname, '..');

/** Asks a name, then answers through the echo component (whose output is the message text). */
const GREET_FLOW = `id: greet
type: messaging
nodes:
  ask:
    qa.process:
      welcome: "Hello from the greeter pack."
      questions:
        - id: name
          prompt: "What is your name?"
          answer_type: text
    routing:
      - to: call
  call:
    component.exec:
      component: echo
      operation: execute
    routing:
      - to: answer
  answer:
    reply: { text: "Nice to meet you, {{call.payload}}." }
`;

/** Flows no message can start: the pack has nothing to bind the chat channels to. */
const TICK_FLOW = `id: tick
type: timer
nodes:
  answer:
    reply: { text: "tick" }
`;

let dir: string;

type Layout = 'legacy' | 'pack-v1';
const LAYOUTS: Layout[] = ['legacy', 'pack-v1'];

async function buildPack(src: string, out: string, layout: Layout): Promise<void> {
  const lines: string[] = [];
  const code = await runPackCli(['build', src, '-o', out, '--format', layout], {
    out: (l) => lines.push(l),
    err: (l) => lines.push(l),
  });
  expect(code, lines.join('\n')).toBe(0);
}

interface CliRun {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `greentic-runner start …` from the TypeScript sources, as `bin/greentic-runner` runs the built ones. */
function runner(args: string[]): CliRun {
  // The test runner's own GREENTIC_* variables must not leak into the child.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GREENTIC_')));
  const proc = spawn(
    process.execPath,
    ['--import', './test/support/ts-loader.mjs', 'src/cli/greentic-runner/main.ts', 'start', ...args],
    {
      cwd: ROOT,
      env: {
        ...base,
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        GREENTIC_CACHE_DIR: path.join(dir, 'cache'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, stdout: () => out, stderr: () => err, exited };
}

const SERVING = /^serving pack (\S+) \(flow (\S+)\): chat page (\S+) \| webhook POST (\S+)$/m;

/** Waits for the line that says where the pack is served; fails with the output if the process exits. */
async function served(r: CliRun, timeoutMs = 120_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = SERVING.exec(r.stdout());
    if (m) return m;
    const gone = await Promise.race([
      r.exited,
      new Promise<'wait'>((res) => setTimeout(() => res('wait'), 200)),
    ]);
    if (gone !== 'wait' || Date.now() > deadline) {
      r.proc.kill('SIGKILL');
      throw new Error(`runner not serving (exit ${String(gone)}):\n${r.stdout()}\n${r.stderr()}`);
    }
  }
}

async function post(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const texts = (b: Record<string, unknown>): string[] =>
  ((b['replies'] as { text?: string }[] | undefined) ?? []).map((r) => r.text ?? '');

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-start-pack-'));
  writePackDir(path.join(dir, 'greeter'), {
    id: 'greeter',
    version: '1.2.0',
    flows: { 'tick.ygtc': TICK_FLOW, 'greet.ygtc': GREET_FLOW },
    components: { echo: await watComponent(3) },
  });
  for (const layout of LAYOUTS)
    await buildPack(path.join(dir, 'greeter'), path.join(dir, `greeter.${layout}.gtpack`), layout);
  writePackDir(path.join(dir, 'chores'), {
    id: 'chores',
    flows: { 'tick.ygtc': TICK_FLOW, 'hello.ygtc': replyFlow('hello', 'x').replace('messaging', 'timer') },
  });
  for (const layout of LAYOUTS)
    await buildPack(path.join(dir, 'chores'), path.join(dir, `chores.${layout}.gtpack`), layout);
});

/** Two turns through the generic webhook, then one through Direct Line on the webchat channel. */
async function converse(page: string, webhook: string, user: string): Promise<void> {
  const t1 = await post(`${webhook}?wait=true`, { userId: user, text: 'hi' });
  expect(t1.status, JSON.stringify(t1.body)).toBe(200);
  expect(t1.body['sessionKey']).toBe(`local:webhook:${user}:${user}`);
  expect(texts(t1.body)).toEqual(['Hello from the greeter pack.', 'What is your name?']);
  const t2 = await post(`${webhook}?wait=true`, { userId: user, text: 'Ada' });
  expect(t2.status).toBe(200);
  expect(t2.body['status']).toBe('completed');
  expect(texts(t2.body)).toEqual(['Nice to meet you, Ada.']);

  // The chat page and a Direct Line token for its channel.
  const html = await fetch(page);
  expect(html.status).toBe(200);
  expect(html.headers.get('content-type')).toMatch(/^text\/html/);
  expect(await html.text()).toContain('greeter 1.2.0');
  const tok = await post(`${page}/token`, {});
  expect(tok.status).toBe(200);
  expect(typeof tok.body['token']).toBe('string');
  expect(typeof tok.body['conversationId']).toBe('string');

  // The webchat channel runs the same flow.
  const dl = `${page}/v3/directline`;
  const auth = { authorization: `Bearer ${String(tok.body['token'])}`, 'content-type': 'application/json' };
  const conv = await fetch(`${dl}/conversations`, { method: 'POST', headers: auth });
  expect([200, 201]).toContain(conv.status);
  const { conversationId } = (await conv.json()) as { conversationId: string };
  const sent = await fetch(`${dl}/conversations/${conversationId}/activities`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ type: 'message', from: { id: `${user}-chat` }, text: 'hello' }),
  });
  expect(sent.status).toBe(200);
  const deadline = Date.now() + 20_000;
  let bot: string[] = [];
  while (Date.now() < deadline && !bot.includes('What is your name?')) {
    const res = await fetch(`${dl}/conversations/${conversationId}/activities`, { headers: auth });
    const { activities } = (await res.json()) as { activities: { from: { id: string }; text?: string }[] };
    bot = activities.filter((a) => a.from.id !== `${user}-chat`).map((a) => a.text ?? '');
    await new Promise((res) => setTimeout(res, 100));
  }
  expect(bot).toEqual(['Hello from the greeter pack.', 'What is your name?']);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe.each(LAYOUTS)('greentic-runner start --pack (%s .gtpack)', { timeout: 300_000 }, (layout) => {
  let r: CliRun | undefined;

  afterAll(async () => {
    if (r && r.proc.exitCode === null) {
      r.proc.kill('SIGTERM');
      await r.exited;
    }
  });

  it('serves the pack on the web and webchat channels, with the dev-policy warning', async () => {
    r = runner(['--pack', path.join(dir, `greeter.${layout}.gtpack`), '--port', '0', '--host', '127.0.0.1']);
    const [, id, flow, page, webhook] = await served(r);
    expect(id).toBe('greeter@1.2.0');
    // The messaging flow, not the timer flow listed first.
    expect(flow).toBe('greet');
    const base = new URL(page!).origin;
    expect(page).toBe(`${base}/webchat/local/dev/default/webchat`);
    expect(webhook).toBe(`${base}/webhooks/webhook/local/dev/default/web`);
    expect(r.stderr()).toContain(
      'greentic-runner: warning: dev trust policy in use: unsigned packs and packs signed by untrusted keys run',
    );
    await converse(page!, webhook!, 'ada');
  });

  // Once, on the layout upstream's tools build.
  if (layout === 'pack-v1')
    it('the chat page holds the conversation in Chromium', async () => {
      const page = SERVING.exec(r!.stdout())![3]!;
      const browser = await launchChromium();
      try {
        const tab = await browser.newPage({ viewport: { width: 420, height: 760 } });
        await tab.goto(page);
        await say(tab, 'hi');
        await bubble(tab, 'What is your name?').waitFor({ timeout: 20_000 });
        await say(tab, 'Linus');
        await bubble(tab, 'Nice to meet you, Linus.').waitFor({ timeout: 20_000 });
        mkdirSync(ARTIFACTS, { recursive: true });
        await tab.screenshot({ path: path.join(ARTIFACTS, 'start-pack-webchat.png') });
      } finally {
        await browser.close();
      }
    });

  it('a pack without a messaging flow: exit 1, naming the flows it has', async () => {
    const pack = path.join(dir, `chores.${layout}.gtpack`);
    const c = runner(['--pack', pack, '--port', '0']);
    expect(await c.exited).toBe(1);
    // The older layout keeps `.ygtc` types; pack-v1 has upstream's flow kinds (a timer flow is a job).
    const kind = layout === 'legacy' ? 'timer' : 'job';
    expect(c.stderr().trim()).toMatch(
      new RegExp(
        `^greentic-runner: --pack ${escape(pack)}: pack 'chores' has no messaging flow to bind the web and webchat channels to \\(its flows: (hello|tick) \\(${kind}\\), (hello|tick) \\(${kind}\\)\\)$`,
      ),
    );
  });
});

describe('greentic-runner start --pack: bad paths', { timeout: 120_000 }, () => {
  it('a missing file: exit 1, naming the path', async () => {
    const missing = path.join(dir, 'nowhere', 'missing.gtpack');
    const c = runner(['--pack', missing, '--port', '0']);
    expect(await c.exited).toBe(1);
    expect(c.stderr().trim()).toBe(`greentic-runner: --pack ${missing}: no such file or directory`);
  });
});
