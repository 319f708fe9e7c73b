// bench/providers: a Slack-signed Events API webhook → flow → chat.postMessage to a local fake,
// against the generic webhook → flow → callback path, in the same run, same flow, same fake.
// Also times the Slack signature check and the JSON shape check (depth and keys, before parsing) alone,
// to show what share of the Slack path's throughput each costs.
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { root, spawnServer, table, writeResults } from '../lib/harness.mjs';
import { verifySlackRequest } from '../../dist/messaging/providers/slack/slack-signature.js';
import { checkJsonShape, DEFAULT_JSON_LIMITS } from '../../dist/common/bounded-json.js';

const quick = process.argv.includes('--quick');
const duration = quick ? 3 : 10;
const warmup = quick ? 1 : 2;
const rounds = quick ? 1 : 2;
const connections = 50;
const SECRET = 'bench-signing-secret-8f742231b10e8888';

function benchBundle(fakeUrl) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-bench-providers-'));
  const pack = path.join(dir, 'packs/bench');
  mkdirSync(path.join(pack, 'flows'), { recursive: true });
  // A flow with no component: what is measured is the provider path, not WebAssembly.
  writeFileSync(
    path.join(pack, 'flows/echo.ygtc'),
    'id: echo\ntype: messaging\nnodes:\n  answer:\n    reply:\n      text: "Echo: {{message.text}}"\n',
  );
  writeFileSync(path.join(pack, 'pack.yaml'), 'id: bench\nversion: 1.0.0\nflows: [flows/echo.ygtc]\n');
  const bundle = path.join(dir, 'bundle.yaml');
  writeFileSync(
    bundle,
    `trust: { policy: dev }
tenants:
  bench:
    packs: [{ id: bench, source: file:./packs/bench }]
    secrets: { backend: env }
    envs:
      dev:
        teams:
          default:
            channels:
              web:
                provider: webhook
                pack: bench
                flow: echo
                settings: { callback_url: "${fakeUrl}/callback" }
              slack:
                provider: slack
                pack: bench
                flow: echo
                settings: { api_base_url: "${fakeUrl}/api/" }
                secret_refs: { signing_secret: slack_signing_secret, bot_token: slack_bot_token }
`,
  );
  return bundle;
}

const runId = `${process.pid}${Date.now().toString(36)}`;
let n = 0;

/** The documented message.im delivery, signed as Slack signs it (fresh timestamp, unique event id). */
function slackRequest() {
  const i = n++;
  const u = i % 1000;
  const body = JSON.stringify({
    token: 'XXYYZZ',
    team_id: 'T123ABC456',
    api_app_id: 'A123ABC456',
    event: {
      type: 'message',
      channel: `D${u}`,
      user: `U${u}`,
      text: 'Paris',
      ts: `1355517523.${String(i).padStart(6, '0')}`,
      channel_type: 'im',
    },
    type: 'event_callback',
    authed_users: ['U123ABC456'],
    event_id: `Ev${runId}${i}`,
    event_time: 1355517523,
  });
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = 'v0=' + createHmac('sha256', SECRET).update(`v0:${ts}:`).update(body).digest('hex');
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-slack-request-timestamp': ts,
      'x-slack-signature': sig,
    },
  };
}

function webhookRequest() {
  const i = n++;
  return {
    body: JSON.stringify({ userId: `u${i % 1000}`, text: 'Paris', messageId: `m${runId}${i}` }),
    headers: { 'content-type': 'application/json' },
  };
}

const counts = async (fake) => (await fetch(`${fake.url}/count`)).json();

async function measure(label, url, make, fake, field) {
  const opts = (secs) => ({
    url,
    connections,
    duration: secs,
    method: 'POST',
    requests: [
      {
        setupRequest: (req) => {
          const r = make();
          return { ...req, body: r.body, headers: { ...req.headers, ...r.headers } };
        },
      },
    ],
  });
  // Warm up, then let every warm-up message reach the fake before measuring.
  const base = (await counts(fake))[field];
  const w = await autocannon(opts(warmup));
  await deliveredAtLeast(fake, field, base + w['2xx']);
  const before = (await counts(fake))[field];
  const t0 = Date.now();
  const r = await autocannon(opts(duration));
  const accepted = r['2xx'];
  // Every accepted message must reach the fake API: wait for the egress to catch up.
  const delivered = (await deliveredAtLeast(fake, field, before + accepted)) - before;
  const endToEndS = (Date.now() - t0) / 1000;
  return {
    path: label,
    reqPerSec: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    accepted,
    delivered,
    deliveredPerSec: Math.round(delivered / endToEndS),
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

/** Waits (up to 60 s) until the fake has received `target` deliveries; answers the count reached. */
async function deliveredAtLeast(fake, field, target) {
  const deadline = Date.now() + 60_000;
  let c = (await counts(fake))[field];
  while (c < target && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 50));
    c = (await counts(fake))[field];
  }
  return c;
}

/** The signature check alone, on a representative delivery: µs per check. */
function signatureCost() {
  const { body, headers } = slackRequest();
  const req = {
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
    rawBody: Buffer.from(body),
  };
  for (let i = 0; i < 5_000; i++) verifySlackRequest(req, SECRET);
  const iterations = 50_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) verifySlackRequest(req, SECRET);
  return Number(process.hrtime.bigint() - t0) / 1e3 / iterations;
}

/** µs per call of `fn`, after a warm-up. */
function microseconds(fn, iterations = 100_000) {
  for (let i = 0; i < 10_000; i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / 1e3 / iterations;
}

/** The JSON shape check alone on the same delivery, with JSON.parse of it for scale: µs each. */
function shapeCheckCost() {
  const { body } = slackRequest();
  return {
    checkUs: microseconds(() => checkJsonShape(body, DEFAULT_JSON_LIMITS)),
    parseUs: microseconds(() => JSON.parse(body)),
  };
}

const fake = await spawnServer(path.join(root, 'bench/providers/fake-apis.mjs'));
const bundle = benchBundle(fake.url);
const runner = await spawnServer(path.join(root, 'bench/providers/runner-server.mjs'), [bundle], {
  GREENTIC_SECRET_BENCH_DEV_SLACK_SIGNING_SECRET: SECRET,
  GREENTIC_SECRET_BENCH_DEV_SLACK_BOT_TOKEN: 'xoxb-bench',
});
const rows = [];
try {
  for (let round = 1; round <= rounds; round++) {
    rows.push({
      round,
      ...(await measure(
        'generic webhook → callback',
        `${runner.url}/webhooks/webhook/bench/dev/default/web`,
        webhookRequest,
        fake,
        'callback',
      )),
    });
    rows.push({
      round,
      ...(await measure(
        'slack signed → chat.postMessage',
        `${runner.url}/webhooks/slack/bench/dev/default/slack`,
        slackRequest,
        fake,
        'slack',
      )),
    });
  }
} finally {
  await runner.stop();
  await fake.stop();
}

const best = (label) => rows.filter((r) => r.path === label).sort((a, b) => b.reqPerSec - a.reqPerSec)[0];
const generic = best('generic webhook → callback');
const slack = best('slack signed → chat.postMessage');
const sigUs = signatureCost();
const sigShare = (sigUs * slack.reqPerSec) / 1e6;
const shape = shapeCheckCost();
const shapeShare = (shape.checkUs * slack.reqPerSec) / 1e6;
const ratio = slack.reqPerSec / generic.reqPerSec;
const target = { signatureShareBelow: 0.1 };
const met =
  sigShare < target.signatureShareBelow &&
  slack.delivered >= slack.accepted &&
  generic.delivered >= generic.accepted;

process.stdout.write(
  `\nproviders: ${connections} connections, ${duration}s per run (+${warmup}s warm-up), ${rounds} round(s); one reply per message to a local fake API\n`,
);
process.stdout.write(
  table(rows, [
    'round',
    'path',
    'reqPerSec',
    'p50Ms',
    'p99Ms',
    'accepted',
    'delivered',
    'deliveredPerSec',
    'errors',
    'non2xx',
  ]) + '\n',
);
process.stdout.write(
  `\nslack / generic (best rounds): ${ratio.toFixed(3)}× req/s; p99 ${slack.p99Ms} ms vs ${generic.p99Ms} ms\n` +
    `signature check alone: ${sigUs.toFixed(2)} µs per request = ${(sigShare * 100).toFixed(2)}% of the Slack path's throughput at ${slack.reqPerSec} req/s\n` +
    `JSON shape check alone: ${shape.checkUs.toFixed(2)} µs per request (JSON.parse of the body: ${shape.parseUs.toFixed(2)} µs) = ${(shapeShare * 100).toFixed(2)}% of the Slack path's throughput\n` +
    `target (signature check < ${target.signatureShareBelow * 100}% of throughput, every accepted message delivered): ${met ? 'met' : 'NOT met'}\n`,
);
const file = writeResults('providers', {
  connections,
  durationS: duration,
  rounds,
  rows,
  slackOverGeneric: Number(ratio.toFixed(3)),
  signatureUsPerRequest: Number(sigUs.toFixed(3)),
  signatureShare: Number(sigShare.toFixed(4)),
  jsonShapeUsPerRequest: Number(shape.checkUs.toFixed(3)),
  jsonParseUsPerRequest: Number(shape.parseUs.toFixed(3)),
  jsonShapeShare: Number(shapeShare.toFixed(4)),
  target,
  met,
});
process.stdout.write(`wrote ${path.relative(root, file)}\n`);
