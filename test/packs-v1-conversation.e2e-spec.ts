/**
 * pack-v1 packs built by this project's `greentic-pack`, end to end (issue #18): the weather desk
 * asks a question, calls the js-upstream component (upstream's 0.6.0 world) for state-store,
 * http-client (a local fake weather API, the tenant's allowed host) and secrets-store (the
 * channel's allowed secret, from the env backend), answers with an Adaptive Card and continues on
 * the card's Action.Submit. Two sources of the same desk:
 *   - test/fixtures/packs/weather-desk: this project's layout, `build --format pack-v1`; the
 *     archive pins its `.ygtc` source, which the runner executes;
 *   - test/fixtures/packs/weather-desk-upstream: upstream's pack.yaml layout; the runner executes
 *     the flow-v1 IR (emit.response sends the card, session.wait parks until its Submit).
 * Each is built signed with a key made here, verified and inspected, loaded through a bundle under
 * the strict policy with that key trusted, and talked to through the generic webhook and through
 * Web Chat in Chromium (screenshots test/artifacts/pack-v1-webchat-*.png).
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
import { ARTIFACTS, launchChromium, say, waitForBubble } from './support/webchat-browser.js';

const TENANT = 'deskco';
const API_KEY = 'desk-api-key-4711';
const ADAPTIVE = 'application/vnd.microsoft.card.adaptive';
/** The env secrets backend's variables for the tenant's dev env. */
const SECRET_ENV = {
  api: 'GREENTIC_SECRET_DESKCO_DEV_WEATHER_API_KEY',
  directLine: 'GREENTIC_SECRET_DESKCO_DEV_DESK_DIRECTLINE_SECRET',
};

interface Variant {
  name: string;
  source: string;
  packId: string;
  /** `build` arguments besides the directory, output and key. */
  buildArgs: string[];
  /** What `build` prints about the layout. */
  built: RegExp;
  /** Channels of the bundle: generic webhook and Web Chat. */
  web: string;
  webchat: string;
  /** The run's status after the card: the IR's session.wait parks; the .ygtc flow ends. */
  afterCard: 'completed' | 'parked';
}

const VARIANTS: Variant[] = [
  {
    name: "this project's layout (.ygtc executed)",
    source: 'test/fixtures/packs/weather-desk',
    packId: 'ai.greentic.runner.weather-desk',
    buildArgs: ['--format', 'pack-v1'],
    built: /\(pack-v1\): ai\.greentic\.runner\.weather-desk@0\.3\.0, 1 flow\(s\), 1 component\(s\)/,
    web: 'web',
    webchat: 'webchat',
    afterCard: 'completed',
  },
  {
    name: "upstream's pack.yaml layout (flow-v1 IR executed)",
    source: 'test/fixtures/packs/weather-desk-upstream',
    packId: 'ai.greentic.runner.weather-desk-upstream',
    buildArgs: [],
    built:
      /\(pack-v1, from upstream's pack\.yaml layout\): ai\.greentic\.runner\.weather-desk-upstream@0\.3\.0, 1 flow\(s\), 1 component\(s\)/,
    web: 'web-upstream',
    webchat: 'webchat-upstream',
    afterCard: 'parked',
  },
];

interface Hit {
  url: string;
  authorization: string | undefined;
}

let dir: string;
let keys: KeyFiles;
const packFiles = new Map<string, string>();
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

/** A fixture source, copied, with the component built by the test setup and the fake API's address. */
function packSource(v: Variant): string {
  const src = path.join(dir, path.basename(v.source));
  cpSync(path.resolve(v.source), src, { recursive: true });
  mkdirSync(path.join(src, 'components', 'js-upstream'), { recursive: true });
  copyFileSync(fixturePath('js-upstream'), path.join(src, 'components', 'js-upstream', 'component.wasm'));
  const flowFile = path.join(src, 'flows', 'desk.ygtc');
  const flow = parseDocument(readFileSync(flowFile, 'utf8'));
  flow.setIn(['parameters', 'api_base'], apiBase);
  writeFileSync(flowFile, flow.toString());
  return src;
}

function writeBundleFile(): string {
  const channel = (v: Variant, provider: string, extra: Record<string, unknown> = {}) => ({
    provider,
    pack: v.packId,
    flow: 'desk',
    // The flow's component may read this secret, and no other.
    secrets: ['weather_api_key'],
    ...extra,
  });
  const channels: Record<string, unknown> = {};
  for (const v of VARIANTS) {
    channels[v.web] = channel(v, 'webhook');
    channels[v.webchat] = channel(v, 'webchat', {
      settings: { title: 'Weather desk', bot_name: 'Desk' },
      secret_refs: { directline_secret: 'desk_directline_secret' },
    });
  }
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
          packs: VARIANTS.map((v) => ({
            id: v.packId,
            source: `file:./${path.basename(packFiles.get(v.packId)!)}`,
          })),
          secrets: { backend: 'env' },
          http: { allow: [new URL(apiBase).host] },
          envs: { dev: { teams: { default: { channels } } } },
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
  for (const v of VARIANTS) {
    const out = path.join(dir, `${path.basename(v.source)}.gtpack`);
    const built = await pack('build', packSource(v), '-o', out, ...v.buildArgs, '--key', keys.privatePem);
    expect(built.code, built.err).toBe(0);
    expect(built.out).toMatch(v.built);
    packFiles.set(v.packId, out);
  }
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
}, 300_000);

afterAll(async () => {
  await app?.close();
  await new Promise<void>((r) => (api ? api.close(() => r()) : r()));
  for (const name of Object.values(SECRET_ENV)) delete process.env[name];
  await deleteRedisPrefix(SHARED_REDIS_URL, redisPrefix).catch(() => undefined);
});

interface WebhookReply {
  text?: string;
  attachments?: { contentType: string; content: Record<string, unknown> }[];
}

/** The texts of an Adaptive Card's TextBlocks, in order. */
function textBlocks(card: Record<string, unknown>): string[] {
  return ((card['body'] as { type: string; text?: string }[] | undefined) ?? [])
    .filter((b) => b.type === 'TextBlock')
    .map((b) => b.text ?? '');
}

describe.each(VARIANTS)('the weather desk from $name', (v) => {
  const packFile = () => packFiles.get(v.packId)!;

  async function post(body: Record<string, unknown>): Promise<{
    status: number;
    body: { status?: string; replies?: WebhookReply[]; error?: { code: string; message: string } };
  }> {
    const res = await fetch(`${base}/webhooks/webhook/${TENANT}/dev/default/${v.web}?wait=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as never };
  }

  it('verifies against the trusted key, inspects, and is served under the strict policy', async () => {
    const ok = await pack('verify', packFile(), '--trust', keys.publicPem, '--json');
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({
      ok: true,
      format: 'pack-v1',
      pack: v.packId,
      signer: keyFingerprint(keys.key.publicKey),
    });
    // Without the key trusted, the strict check refuses it.
    expect((await pack('verify', packFile())).code).not.toBe(0);
    const ins = await pack('inspect', packFile());
    expect(ins.code, ins.err).toBe(0);
    expect(ins.out).toMatch(/entrypoint {2}desk → visit/);
    expect(ins.out).toMatch(/ {2}forecast +js-upstream +fetch +next → card/);
    const st = (await (await fetch(`${base}/admin/packs/status`)).json()) as {
      packs: { tenant: string; pack: string; version: string; signer: string; warnings: string[] }[];
    };
    expect(st.packs.find((p) => p.pack === v.packId)).toMatchObject({
      tenant: TENANT,
      version: '0.3.0',
      signer: keyFingerprint(keys.key.publicKey),
      warnings: [],
    });
  });

  it('through the webhook: asks, calls the component (secret, http, state), answers with a card, and continues on its Submit', async () => {
    const user = `ada-${v.web}`;
    const before = hits.length;
    const t1 = await post({ userId: user, text: 'hi' });
    expect(t1.status, JSON.stringify(t1.body)).toBe(200);
    expect(t1.body.error).toBeUndefined();
    expect(t1.body.status).toBe('parked');
    expect(t1.body.replies?.map((r) => r.text)).toEqual(['Weather desk. Visit 1.', 'Which city?']);
    expect(hits.length).toBe(before);

    const t2 = await post({ userId: user, text: 'Lisbon' });
    expect(t2.status).toBe(200);
    expect(t2.body.error).toBeUndefined();
    expect(t2.body.status).toBe(v.afterCard);
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
    expect(hits.slice(before)).toEqual([{ url: '/forecast/Lisbon', authorization: `Bearer ${API_KEY}` }]);
    // The card's text fallback is its plain reading; the secret is in no reply.
    expect(replies[0]!.text).toContain('Sunny in Lisbon, 21 degrees');
    expect(JSON.stringify(t2.body)).not.toContain(API_KEY);

    // The card's Submit: its data comes back as the next message, and the counter kept in
    // state-store carries across turns (visit 2).
    const t3 = await post({ userId: user, action: { action_id: 'thanks', city: 'Lisbon' } });
    expect(t3.status).toBe(200);
    expect(t3.body.error).toBeUndefined();
    expect(t3.body.status).toBe('completed');
    expect(t3.body.replies?.map((r) => r.text)).toEqual(['Glad to help with Lisbon. Visit 2.']);
    expect(hits.length).toBe(before + 1);

    // Another user has a counter of their own.
    const other = await post({ userId: `bob-${v.web}`, text: 'hi' });
    expect(other.body.replies?.map((r) => r.text)).toEqual(['Weather desk. Visit 1.', 'Which city?']);
  });

  it('through Web Chat in Chromium: the card is rendered with the forecast, and its Submit button brings the next reply', async () => {
    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ viewport: { width: 420, height: 820 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      const res = await page.goto(`${base}/webchat/${TENANT}/dev/default/${v.webchat}`);
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
      await waitForBubble(page, 'Which city?', 30_000, errors);
      await say(page, 'Oslo');
      const card = page.locator('.ac-adaptiveCard').filter({ hasText: 'Forecast for Oslo' });
      await card.waitFor({ timeout: 30_000 });
      const shown = await card.innerText();
      expect(shown).toContain('Sunny in Oslo, 21 degrees');
      expect(shown).toContain('HTTP 200, visit 1');
      expect(hits.at(-1)).toEqual({ url: '/forecast/Oslo', authorization: `Bearer ${API_KEY}` });
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, `pack-v1-webchat-${v.webchat}-card.png`) });

      await card.getByRole('button', { name: 'Thanks' }).click();
      await waitForBubble(page, 'Glad to help with Oslo. Visit 2.', 30_000, errors);
      await page.screenshot({ path: path.join(ARTIFACTS, `pack-v1-webchat-${v.webchat}-submit.png`) });
      expect(errors).toEqual([]);
      await context.close();
    } finally {
      await browser.close();
    }
  }, 120_000);
});
