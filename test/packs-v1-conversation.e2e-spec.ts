/**
 * A pack-v1 pack built by this project's `greentic-pack`, end to end (issue #18): the weather desk
 * (test/fixtures/packs/weather-desk) asks a question, calls the js-upstream component (upstream's
 * 0.6.0 world) for state-store, http-client and secrets-store, answers with an Adaptive Card and
 * continues on the card's Action.Submit. Built signed with a key made here, verified under the
 * strict policy with that key trusted, loaded through a bundle, and talked to through the generic
 * webhook and through Web Chat in Chromium (screenshot test/artifacts/pack-v1-webchat-card.png).
 */
import { cpSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunnerApp } from '../src/bootstrap.js';
import { runCli as runPackCli } from '../src/cli/greentic-pack/cli.js';
import { keyFingerprint } from '../src/packs/format/keys.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { writeKeyPair, type KeyFiles } from './fixtures/packs/pack-fixtures.js';
import {
  deleteRedisPrefix,
  requireRedis,
  SHARED_REDIS_URL,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';
import { ARTIFACTS, bubble, launchChromium, say } from './support/webchat-browser.js';

const SOURCE = path.resolve('test/fixtures/packs/weather-desk');
const PACK_ID = 'ai.greentic.runner.weather-desk';
const TENANT = 'deskco';
const API_KEY = 'desk-api-key-4711';
const ADAPTIVE = 'application/vnd.microsoft.card.adaptive';
/** The env secrets backend's variables for the tenant's dev env. */
const SECRET_ENV = {
  api: 'GREENTIC_SECRET_DESKCO_DEV_WEATHER_API_KEY',
  directLine: 'GREENTIC_SECRET_DESKCO_DEV_DESK_DIRECTLINE_SECRET',
};

interface Hit {
  url: string;
  authorization: string | undefined;
}

let dir: string;
let keys: KeyFiles;
let packFile: string;
let api: Server;
let apiBase: string;
const hits: Hit[] = [];
let app: RunnerApp | undefined;
let base: string;
const redisPrefix = uniqueRedisPrefix('packs-v1-conversation');

async function pack(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runPackCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** The fake weather API: answers only a request carrying the desk's key. */
async function fakeWeatherApi(): Promise<void> {
  api = createServer((req, res) => {
    const authorization = req.headers.authorization;
    hits.push({ url: req.url ?? '', authorization });
    if (authorization !== `Bearer ${API_KEY}`) {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('unauthorized');
      return;
    }
    const city = decodeURIComponent((req.url ?? '').replace(/^\/forecast\//, ''));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`Sunny in ${city}, 21 degrees`);
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apiBase = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
}

/** The fixture source, copied, with the component built by the test setup and the fake API's address. */
function packSource(): string {
  const src = path.join(dir, 'weather-desk');
  cpSync(SOURCE, src, { recursive: true });
  mkdirSync(path.join(src, 'components', 'js-upstream'), { recursive: true });
  copyFileSync(fixturePath('js-upstream'), path.join(src, 'components', 'js-upstream', 'component.wasm'));
  const flowFile = path.join(src, 'flows', 'desk.ygtc');
  const flow = parseDocument(readFileSync(flowFile, 'utf8'));
  flow.setIn(['parameters', 'api_base'], apiBase);
  writeFileSync(flowFile, flow.toString());
  return src;
}

function writeBundleFile(): string {
  const channel = (provider: string, extra: Record<string, unknown>) => ({
    provider,
    pack: PACK_ID,
    flow: 'desk',
    // The flow's component may read this secret, and no other.
    secrets: ['weather_api_key'],
    ...extra,
  });
  const file = path.join(dir, 'bundle.yaml');
  writeFileSync(
    file,
    stringify({
      version: 1,
      trust: { policy: 'strict', keys: [`./${path.basename(keys.publicPem)}`] },
      // Not a deadline test: the first call instantiates a 12 MB component on a busy machine.
      limits: { component_deadline_ms: 15_000 },
      tenants: {
        [TENANT]: {
          packs: [{ id: PACK_ID, source: `file:./${path.basename(packFile)}` }],
          secrets: { backend: 'env' },
          http: { allow: [new URL(apiBase).host] },
          envs: {
            dev: {
              teams: {
                default: {
                  channels: {
                    web: channel('webhook', {}),
                    webchat: channel('webchat', {
                      settings: { title: 'Weather desk', bot_name: 'Desk' },
                      secret_refs: { directline_secret: 'desk_directline_secret' },
                    }),
                  },
                },
              },
            },
          },
        },
      },
    }),
  );
  return file;
}

beforeAll(async () => {
  await requireRedis();
  dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-pack-v1-conversation-'));
  keys = writeKeyPair(dir, 'desk');
  await fakeWeatherApi();
  packFile = path.join(dir, 'weather-desk.gtpack');
  const built = await pack(
    'build',
    packSource(),
    '-o',
    packFile,
    '--format',
    'pack-v1',
    '--key',
    keys.privatePem,
  );
  expect(built.code, built.err).toBe(0);
  process.env[SECRET_ENV.api] = API_KEY;
  process.env[SECRET_ENV.directLine] = 'desk-directline-secret-0123456789';
  const started = await startApp({
    config: {
      PORT: 0,
      GREENTIC_BUNDLE: writeBundleFile(),
      LOG_LEVEL: 'silent',
      GREENTIC_SESSIONS: 'redis',
      REDIS_URL: SHARED_REDIS_URL,
      GREENTIC_REDIS_PREFIX: redisPrefix,
      GREENTIC_PACK_WATCH_INTERVAL_MS: 0,
      GREENTIC_CACHE_DIR: path.join(dir, 'cache'),
    },
  });
  app = started.app;
  base = started.url;
}, 240_000);

afterAll(async () => {
  await app?.close();
  await new Promise<void>((r) => (api ? api.close(() => r()) : r()));
  for (const name of Object.values(SECRET_ENV)) delete process.env[name];
  await deleteRedisPrefix(SHARED_REDIS_URL, redisPrefix).catch(() => undefined);
});

describe('the weather desk pack, built by greentic-pack in pack-v1 form', () => {
  it('verifies against the trusted key, and inspect shows the flow and its component', async () => {
    const ok = await pack('verify', packFile, '--trust', keys.publicPem, '--json');
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({
      ok: true,
      format: 'pack-v1',
      pack: PACK_ID,
      signer: keyFingerprint(keys.key.publicKey),
    });
    // Without the key trusted, the strict check refuses it.
    expect((await pack('verify', packFile)).code).not.toBe(0);
    const ins = await pack('inspect', packFile);
    expect(ins.code, ins.err).toBe(0);
    expect(ins.out).toMatch(/entrypoint {2}desk → visit/);
    expect(ins.out).toMatch(/ {2}forecast +js-upstream +fetch +next → card/);
    // The runner loaded it under the strict policy, signed by that key.
    const st = (await (await fetch(`${base}/admin/packs/status`)).json()) as {
      packs: { tenant: string; pack: string; version: string; signer: string; warnings: string[] }[];
    };
    expect(st.packs.find((p) => p.pack === PACK_ID)).toMatchObject({
      tenant: TENANT,
      version: '0.3.0',
      signer: keyFingerprint(keys.key.publicKey),
      warnings: [],
    });
  });
});

interface WebhookReply {
  text?: string;
  attachments?: { contentType: string; content: Record<string, unknown> }[];
}

async function post(body: Record<string, unknown>): Promise<{
  status: number;
  body: { status?: string; replies?: WebhookReply[]; error?: { code: string; message: string } };
}> {
  const res = await fetch(`${base}/webhooks/webhook/${TENANT}/dev/default/web?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as never };
}

/** The texts of an Adaptive Card's TextBlocks, in order. */
function textBlocks(card: Record<string, unknown>): string[] {
  return ((card['body'] as { type: string; text?: string }[] | undefined) ?? [])
    .filter((b) => b.type === 'TextBlock')
    .map((b) => b.text ?? '');
}

describe('a conversation through the generic webhook', () => {
  it('asks, calls the component (secret, http, state), answers with a card, and continues on its Submit', async () => {
    const t1 = await post({ userId: 'ada', text: 'hi' });
    expect(t1.status, JSON.stringify(t1.body)).toBe(200);
    expect(t1.body.error).toBeUndefined();
    expect(t1.body.status).toBe('parked');
    expect(t1.body.replies?.map((r) => r.text)).toEqual(['Weather desk. Visit 1.', 'Which city?']);
    expect(hits).toEqual([]);

    const t2 = await post({ userId: 'ada', text: 'Lisbon' });
    expect(t2.status).toBe(200);
    expect(t2.body.error).toBeUndefined();
    expect(t2.body.status).toBe('completed');
    const replies = t2.body.replies ?? [];
    expect(replies).toHaveLength(1);
    const attachment = replies[0]!.attachments?.[0];
    expect(attachment?.contentType).toBe(ADAPTIVE);
    const card = attachment!.content;
    expect(card['type']).toBe('AdaptiveCard');
    // The http call reached the fake API with the secret, and its answer is on the card.
    expect(textBlocks(card)).toEqual([
      'Forecast for Lisbon',
      'Sunny in Lisbon, 21 degrees',
      'HTTP 200, visit 1',
    ]);
    expect(card['actions']).toEqual([
      { type: 'Action.Submit', title: 'Thanks', data: { action_id: 'thanks', city: 'Lisbon' } },
    ]);
    expect(hits).toEqual([{ url: '/forecast/Lisbon', authorization: `Bearer ${API_KEY}` }]);
    // The card's text fallback is its plain reading; the secret is in no reply.
    expect(replies[0]!.text).toContain('Sunny in Lisbon, 21 degrees');
    expect(JSON.stringify(t2.body)).not.toContain(API_KEY);

    // The card's Submit: its data comes back as the next message, and the counter kept in
    // state-store carries across turns (visit 2).
    const t3 = await post({ userId: 'ada', action: { action_id: 'thanks', city: 'Lisbon' } });
    expect(t3.status).toBe(200);
    expect(t3.body.error).toBeUndefined();
    expect(t3.body.replies?.map((r) => r.text)).toEqual(['Glad to help with Lisbon. Visit 2.']);
    expect(hits).toHaveLength(1);

    // Another user has a counter of their own.
    const other = await post({ userId: 'bob', text: 'hi' });
    expect(other.body.replies?.map((r) => r.text)).toEqual(['Weather desk. Visit 1.', 'Which city?']);
  });
});

describe('a conversation through Web Chat in Chromium', () => {
  it('renders the card with the forecast, and its Submit button brings the next reply', async () => {
    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ viewport: { width: 420, height: 820 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      const res = await page.goto(`${base}/webchat/${TENANT}/dev/default/webchat`);
      expect(res?.status()).toBe(200);
      await page
        .locator('[data-id="webchat-sendbox-input"]')
        .waitFor({ timeout: 20_000 })
        // What the page said instead (e.g. its token request failed) makes the failure readable.
        .catch(async (e: unknown) => {
          throw new Error(
            `${String(e)}\n${errors.join('\n')}\n${await page.locator('#webchat').innerText()}`,
          );
        });

      await say(page, 'hello');
      await bubble(page, 'Which city?').waitFor({ timeout: 30_000 });
      await say(page, 'Oslo');
      const card = page.locator('.ac-adaptiveCard').filter({ hasText: 'Forecast for Oslo' });
      await card.waitFor({ timeout: 30_000 });
      const shown = await card.innerText();
      expect(shown).toContain('Sunny in Oslo, 21 degrees');
      expect(shown).toContain('HTTP 200, visit 1');
      expect(hits.at(-1)).toEqual({ url: '/forecast/Oslo', authorization: `Bearer ${API_KEY}` });
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'pack-v1-webchat-card.png') });

      await card.getByRole('button', { name: 'Thanks' }).click();
      await bubble(page, 'Glad to help with Oslo. Visit 2.').waitFor({ timeout: 30_000 });
      await page.screenshot({ path: path.join(ARTIFACTS, 'pack-v1-webchat-submit.png') });
      expect(errors).toEqual([]);
      await context.close();
    } finally {
      await browser.close();
    }
  }, 120_000);
});
