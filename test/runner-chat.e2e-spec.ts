/**
 * `greentic-runner chat`: the real CLI in its own process, driven through a pseudo-terminal
 * (util-linux `script`), as a person at a terminal would: it starts the runner in-process, sends
 * each line through the generic webhook and prints the replies (and, with --trace, the per-node
 * transcript of `greentic-runner test`). The demo pack, two conversations.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const DEMO_PACK = path.join(ROOT, 'examples/demo/packs/demo');

const ANSI = new RegExp(String.raw`\u001b\[[0-9;?]*[A-Za-z]`, 'g');

class PtyChat {
  private text = '';
  readonly exited: Promise<number | null>;

  constructor(private readonly proc: ChildProcessWithoutNullStreams) {
    const keep = (d: Buffer): void => {
      this.text += d.toString().replace(ANSI, '').replace(/\r/g, '');
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  static start(args: string[]): PtyChat {
    const cmd = [
      process.execPath,
      '--import',
      './test/support/ts-loader.mjs',
      'src/cli/greentic-runner/main.ts',
      'chat',
      ...args,
    ]
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ');
    // -q quiet, -f flush at once, -e the child's exit code, -c the command; the typescript goes nowhere.
    const proc = spawn('script', ['-qfec', cmd, '/dev/null'], {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'production', TERM: 'dumb' },
    });
    return new PtyChat(proc);
  }

  get output(): string {
    return this.text;
  }

  /** Waits until the output after `from` matches; answers the offset just past the match. */
  async waitFor(re: RegExp, from = 0, timeoutMs = 60_000): Promise<number> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.text.slice(from));
      if (m) return from + m.index + m[0].length;
      if (Date.now() > until)
        throw new Error(`no ${String(re)} within ${timeoutMs} ms; the terminal shows:\n${this.text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  type(line: string): void {
    this.proc.stdin.write(line + '\n');
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

let chat: PtyChat | undefined;
afterEach(() => chat?.kill());

describe('greentic-runner chat in a terminal', () => {
  it('--pack: two turns with the demo pack, the second answer re-asked as the flow says', async () => {
    chat = PtyChat.start(['--pack', DEMO_PACK]);
    let at = await chat.waitFor(
      /chatting with pack demo@[\d.]+, flow weather_bot on local\/dev\/default\/web as chat-user; \/help for commands, \/quit or Ctrl-D to leave\n/,
    );
    at = await chat.waitFor(/you> /, at);
    chat.type('hi');
    at = await chat.waitFor(/bot> What location would you like a forecast for\?\n/, at);
    expect(chat.output).toContain("bot> Hi there! Let's get your weather forecast.");
    at = await chat.waitFor(/you> /, at);
    chat.type('the north of New York please');
    at = await chat.waitFor(/bot> What location would you like a forecast for\?\n/, at);
    expect(chat.output).toContain('bot> Please answer in at most 3 words (you used 6).');
    await chat.waitFor(/you> /, at);
    chat.type('/quit');
    expect(await chat.exited).toBe(0);
  });

  it('--bundle --channel --trace: the forecast comes back with the per-node transcript', async () => {
    // The demo bundle, with room for the first (cold) call of the weather component on a busy machine.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-chat-'));
    const bundle = path.join(dir, 'bundle.yaml');
    writeFileSync(
      bundle,
      [
        'version: 1',
        'trust: { policy: dev }',
        'limits: { component_deadline_ms: 60000 }',
        'tenants:',
        '  demo:',
        `    packs: [{ id: demo, source: "file:${DEMO_PACK}" }]`,
        '    secrets: { backend: env }',
        '    envs:',
        '      dev:',
        '        teams:',
        '          default:',
        '            channels:',
        '              web: { provider: webhook, pack: demo, flow: weather_bot }',
        '',
      ].join('\n'),
    );
    chat = PtyChat.start([
      '--bundle',
      bundle,
      '--channel',
      'demo/dev/default/web',
      '--trace',
      '--user',
      'ada',
    ]);
    let at = await chat.waitFor(/as ada; \/help for commands/);
    at = await chat.waitFor(/you> /, at);
    chat.type('hi');
    at = await chat.waitFor(/bot> What location would you like a forecast for\?\n/, at);
    expect(chat.output).toMatch(
      / {4}in\s+qa\.process\s+[\d.]+ ms {2}in: - {2}out: \{"parked":\{"question":0\}\}/,
    );
    at = await chat.waitFor(/you> /, at);
    chat.type('Paris');
    const end = await chat.waitFor(/bot> Weather for Paris: [^\n]+\n/, at, 120_000);
    const turn = chat.output.slice(at, end);
    expect(turn).toMatch(/ {4}forecast_weather\s+mcp\.exec\s+[\d.]+ ms {2}in: \{"q":"Paris","days":3\}/);
    expect(turn).toMatch(/ {4}weather_text\s+templating\.handlebars/);
    expect(turn).toContain('bot> Weather for Paris: Light rain, 22°C / 12°C today');
    await chat.waitFor(/you> /, end);
    chat.type('/quit');
    expect(await chat.exited).toBe(0);
  });
});
