import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fixturePath } from './fixtures/fixture-paths.js';
import { FakeServer } from './support/fakes/fake-server.js';
import { OtlpFake } from './support/fakes/otlp-fake.js';
import { VaultFake } from './support/fakes/vault-fake.js';
import { RunnerProcess } from './support/runner-process.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * Secret values never leave the runner: not in logs, error answers, traces, `/health`, `/metrics`
 * or admin output. The runner runs as its own process (its real stdout is the log), reads a
 * Telegram channel's secrets from a Vault fake, and delivers replies to a Telegram API fake that
 * echoes the bot token back in its error descriptions, the way careless upstreams do. That puts
 * the token into an exception message, a log line, a span event and a dead letter: each sink must
 * show `[redacted]` where the value was (proving the path was taken) and never the value.
 */
const BOT_TOKEN = '7781204553:AAE-redaction-bot-token-Q9x';
const WEBHOOK_SECRET = 'whsec-redaction-9f3e77d1';
const VAULT_TOKEN = 'hvs.redaction-vault-token-51';

const ECHO_FLOW = `id: echo
type: messaging
nodes:
  call:
    component.exec:
      component: echo
      operation: execute
    routing:
      - to: answer
  answer:
    reply: { text: "echo: {{call.payload}}" }
`;

const vault = new VaultFake();
const otlp = new OtlpFake();
let telegramCalls = 0;
const telegram = new FakeServer((r) => {
  telegramCalls++;
  const token = /^\/bot(.+)\/sendMessage$/.exec(r.path)?.[1] ?? '';
  // First a retryable failure (the dispatcher throws: span exception), then a refusal (dead letter).
  return telegramCalls === 1
    ? {
        status: 500,
        body: {
          ok: false,
          error_code: 500,
          description: `Internal Server Error: bot ${token} is overloaded`,
        },
      }
    : {
        status: 400,
        body: { ok: false, error_code: 400, description: `Bad Request: chat not found for bot ${token}` },
      };
});
let runner: RunnerProcess;

function update(id: number, text: string): string {
  return JSON.stringify({
    update_id: id,
    message: {
      message_id: id,
      date: 1_700_000_000,
      text,
      from: { id: 4242, is_bot: false, first_name: 'Ada' },
      chat: { id: 4242, type: 'private' },
    },
  });
}

beforeAll(async () => {
  await vault.start();
  await otlp.start();
  await telegram.listen();
  vault.addToken(VAULT_TOKEN);
  vault.put('secret', 'acme/dev/bot_token', { value: BOT_TOKEN });
  vault.put('secret', 'acme/dev/webhook_secret', { value: WEBHOOK_SECRET });
  const bundle = writeTempBundle({
    // Generous: first calls start component workers, slow on a loaded CI machine.
    limits: { component_deadline_ms: 20_000 },
    packs: [{ id: 'echo', flows: { 'echo.ygtc': ECHO_FLOW }, components: { echo: fixturePath('echo') } }],
    tenants: {
      acme: {
        packs: ['echo'],
        secrets: {
          backend: 'vault',
          options: { address: vault.address, auth: { token_env: 'GREENTIC_TEST_VAULT_TOKEN' } },
        },
        channels: {
          tg: {
            provider: 'telegram',
            pack: 'echo',
            flow: 'echo',
            settings: { api_base_url: `http://127.0.0.1:${telegram.port}` },
          },
        },
      },
    },
  });
  runner = await RunnerProcess.start('redaction', {
    GREENTIC_BUNDLE: bundle,
    GREENTIC_TEST_VAULT_TOKEN: VAULT_TOKEN,
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
    // OTLP/JSON here; the telemetry spec covers the default, protobuf.
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: 100,
    LOG_LEVEL: 'info',
  });
}, 120_000);

afterAll(async () => {
  if (runner) {
    runner.kill('SIGTERM').catch(() => undefined);
    await runner.exited;
  }
  await vault.close();
  await otlp.close();
  await telegram.close();
});

describe('secret values stay inside the runner', () => {
  it('is not in error answers', async () => {
    const wrong = await fetch(`${runner.url}/webhooks/telegram/acme/dev/default/tg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': 'not-the-secret' },
      body: update(1, 'hello'),
    });
    expect(wrong.status).toBe(401);
    const body = await wrong.text();
    expect(body).not.toContain(WEBHOOK_SECRET);
    expect(body).not.toContain(BOT_TOKEN);
  });

  it('is blanked in logs, spans and dead letters when an upstream echoes it', async () => {
    const ok = await fetch(`${runner.url}/webhooks/telegram/acme/dev/default/tg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': WEBHOOK_SECRET },
      body: update(2, 'ping'),
    });
    expect(ok.status).toBe(200);
    const okBody = await ok.text();
    expect(okBody).not.toContain(BOT_TOKEN);

    // The reply fails twice at the Telegram fake, then is dead-lettered.
    let deadLetters: { error: { message: string } }[] = [];
    await vi.waitFor(
      async () => {
        const r = await fetch(`${runner.url}/admin/tenants/acme/dead-letters`);
        deadLetters = ((await r.json()) as { deadLetters: typeof deadLetters }).deadLetters;
        expect(deadLetters).toHaveLength(1);
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(telegram.requests.some((r) => r.path === `/bot${BOT_TOKEN}/sendMessage`)).toBe(true);
    expect(deadLetters[0]!.error.message).toContain('[redacted]');
    expect(JSON.stringify(deadLetters)).not.toContain(BOT_TOKEN);

    await vi.waitFor(
      () => {
        const failed = otlp.spans.find((s) =>
          s.events.some((e) => String(e.attributes['exception.message'] ?? '').includes('is overloaded')),
        );
        expect(failed, 'a span recorded the upstream failure').toBeDefined();
        expect(
          String(failed!.events.find((e) => e.name === 'exception')!.attributes['exception.message']),
        ).toContain('bot [redacted] is overloaded');
      },
      { timeout: 15_000, interval: 100 },
    );
    const spans = JSON.stringify(otlp.spans);
    for (const v of [BOT_TOKEN, WEBHOOK_SECRET, VAULT_TOKEN]) expect(spans).not.toContain(v);

    await vi.waitFor(() =>
      expect(runner.log).toMatch(
        /"err":"telegram: sendMessage answered 500: Internal Server Error: bot \[redacted\] is overloaded".*"msg":"egress delivery failed/,
      ),
    );
    for (const v of [BOT_TOKEN, WEBHOOK_SECRET, VAULT_TOKEN]) expect(runner.log).not.toContain(v);
  });

  it('is not in /health, /metrics or the admin API', async () => {
    for (const p of [
      '/health',
      '/health/ready',
      '/metrics',
      '/admin/tenants',
      '/admin/tenants/acme',
      '/admin/tenants/acme/flows',
      '/admin/packs/status',
      '/openapi.json',
    ]) {
      const res = await fetch(runner.url + p);
      const text = await res.text();
      expect(res.status, p).toBeLessThan(500);
      for (const v of [BOT_TOKEN, WEBHOOK_SECRET, VAULT_TOKEN]) expect(text, p).not.toContain(v);
    }
    const tenants = (await (await fetch(`${runner.url}/admin/tenants/acme`)).json()) as {
      secrets: { backend: string; cache: { fetches: number } };
    };
    expect(tenants.secrets.backend).toBe('vault');
    expect(tenants.secrets.cache.fetches).toBeGreaterThanOrEqual(2);
  });
});
