// Costs of the small bypasses on the message path (docs/performance.md), each beside the plain
// code it replaces: `node bench/micro/run.mjs` (or `npm run bench -- micro`). Writes
// bench/results/micro.json. Each row is the time of one operation; the per-message share is that
// times how often a message meets it, against the runner echo's CPU per message
// (`npm run bench -- webhook`: cpuUsPerReq of the runner echo row, 306 µs in the committed
// bench/results/webhook.json, Node 24; ~90 µs on Node 20's reference machine). Under 2 % of that
// (~6 µs per message) a bypass goes (issue #19); where a row and `bench/webhook/ab.mjs` disagree,
// the A/B decides (docs/performance.md).
import { LabelGuard } from '../../dist/common/label-guard.js';
import { table, writeResults } from '../lib/harness.mjs';

const quick = process.argv.includes('--quick');
const N = quick ? 200_000 : 2_000_000;

function time(f, n = N) {
  let sink = 0;
  for (let i = 0; i < Math.min(n, 200_000); i++) sink += f(i) ? 1 : 0;
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += f(i) ? 1 : 0;
  const ns = Number(process.hrtime.bigint() - t) / n;
  if (sink < 0) process.stdout.write(''); // keeps the results alive
  return ns;
}

async function timeAsync(f, n = N / 2) {
  for (let i = 0; i < Math.min(n, 100_000); i++) await f(i);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await f(i);
  return Number(process.hrtime.bigint() - t) / n;
}

const rows = [];
const row = (bypass, variant, ns, perMessage) =>
  rows.push({
    bypass,
    variant,
    nsPerOp: ns.toFixed(1),
    perMessage,
    usPerMessage: ((ns * perMessage) / 1000).toFixed(2),
  });

// Memory session store: skip structuredClone of empty session data (src/sessions/memory-session.store.ts).
// Inside the runner the clone costs several times this row (docs/performance.md has the A/B).
const empty = {};
const isEmpty = (o) => {
  for (const _ in o) return false;
  return true;
};
row(
  'empty session data not cloned',
  'structuredClone({})',
  time(() => structuredClone(empty)),
  2,
);
row(
  'empty session data not cloned',
  'isEmpty check (kept)',
  time(() => (isEmpty(empty) ? {} : structuredClone(empty))),
  2,
);

// Component text output: only what can be JSON meets JSON.parse (src/wasm/component-calls.ts
// parseData). Inside the runner a thrown SyntaxError costs several times this row
// (docs/performance.md has the A/B).
const JSON_START = /^\s*(?:[{["\d-]|true\b|false\b|null\b)/;
const text = 'Hi there! Let us get your weather forecast.';
const parseTry = () => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};
row('plain-text output skips JSON.parse', 'JSON.parse throws', time(parseTry, N / 10), 1);
row(
  'plain-text output skips JSON.parse',
  'JSON_START test (kept)',
  time(() => (JSON_START.test(text) ? parseTry() : text)),
  1,
);

// Removed (slower than the spread on Node 24): embedded bus headers copied key by key
// (src/messaging/in-process.bus.ts publish).
const h = {
  'greentic-tenant': 'acme',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};
row(
  'bus headers copied by key (removed)',
  'spread + key',
  time(() => ({ ...h, 'Nats-Msg-Id': 'x' })),
  2,
);
row(
  'bus headers copied by key (removed)',
  'for-in copy',
  time(() => {
    const o = {};
    for (const k in h) o[k] = h[k];
    o['Nats-Msg-Id'] = 'x';
    return o;
  }),
  2,
);

// Removed: the webhook controller's then-check that skipped awaiting a synchronous provider.
const result = { messages: [1] };
row(
  'webhook: no await of a sync parse (removed)',
  'await',
  await timeAsync(async () => (await result).messages.length),
  1,
);
row(
  'webhook: no await of a sync parse (removed)',
  'then-check',
  await timeAsync(async () => {
    const r = typeof result.then === 'function' ? await result : result;
    return r.messages.length;
  }),
  1,
);

// Removed: subject strings cached in a trie of maps, and parsed subjects cached by string.
const trie = new Map();
const branch = (n, p) => {
  let x = n.get(p);
  if (!x) n.set(p, (x = new Map()));
  return x;
};
const tenants = ['acme', 'globex', 'initech', 'umbrella'];
const seen = new Map();
row(
  'subject strings cached (removed)',
  'template + Map.set',
  time((i) => {
    const s = `greentic.messaging.egress.dev.${tenants[i & 3]}.default.chat`;
    seen.set(s, i);
    return s;
  }),
  4,
);
row(
  'subject strings cached (removed)',
  'trie lookup + Map.set',
  time((i) => {
    const node = branch(branch(branch(trie, 'dev'), tenants[i & 3]), 'default');
    let s = node.get('chat');
    if (s === undefined)
      node.set('chat', (s = `greentic.messaging.egress.dev.${tenants[i & 3]}.default.chat`));
    seen.set(s, i);
    return s;
  }),
  4,
);
const subjects = tenants.map((t) => `greentic.messaging.ingress.dev.${t}.default.chat`);
const split = (s) => {
  const p = s.split('.');
  return p.length === 7 ? { direction: p[2], env: p[3], tenant: p[4], team: p[5], channel: p[6] } : null;
};
const parsed = new Map();
row(
  'parsed subjects cached (removed)',
  'split',
  time((i) => split(subjects[i & 3]).tenant),
  4,
);
row(
  'parsed subjects cached (removed)',
  'Map lookup',
  time((i) => {
    const s = subjects[i & 3];
    let p = parsed.get(s);
    if (p === undefined) parsed.set(s, (p = split(s)));
    return p.tenant;
  }),
  4,
);

// Removed (under 2 %): label sets for metric records remembered (src/common/label-guard.ts).
// LabelGuard caps each label's distinct values; a message records ~9 label sets (messages in,
// flow latency, session load and commit, component call, flow run, bus lag and egress out). It
// remembered checked sets in a trie of maps (`bound`) and per owner object (`boundFor`); it now
// checks the set on every record. The two memo rows are that code, rebuilt here.
const guard = new LabelGuard();
const owner = {};
const channels = ['chat', 'web', 'sms', 'mail'];
const memoRoot = new Map();
const LEAF = Symbol('labels');
const trieBound = (attrs) => {
  let node = memoRoot;
  for (const k in attrs) node = branch(branch(node, k), attrs[k]);
  let hit = node.get(LEAF);
  // A miss (once per distinct set) checks the set as LabelGuard does.
  if (!hit) node.set(LEAF, (hit = guard.bound(attrs)));
  return hit;
};
const owned = new WeakMap();
const ownerBound = (o, key, make) => {
  let byKey = owned.get(o);
  if (!byKey) owned.set(o, (byKey = new Map()));
  let attrs = byKey.get(key);
  if (!attrs) byKey.set(key, (attrs = trieBound(make())));
  return attrs;
};
row(
  'label sets remembered (removed)',
  'LabelGuard.bound, checked per record',
  time((i) => guard.bound({ tenant: tenants[i & 3], channel: channels[i & 3], outcome: 'ok' })),
  9,
);
row(
  'label sets remembered (removed)',
  'trie of checked sets',
  time((i) => trieBound({ tenant: tenants[i & 3], channel: channels[i & 3], outcome: 'ok' })),
  9,
);
row(
  'label sets remembered (removed)',
  'memo per owner',
  time((i) =>
    ownerBound(owner, channels[i & 3], () => ({
      tenant: tenants[i & 3],
      channel: channels[i & 3],
      outcome: 'ok',
    })),
  ),
  9,
);

// Removed (under 2 %): the pool's invoke reading its settled prepared components synchronously
// (src/wasm/pool/pooled-component.runtime.ts `ready`), one per component call; it now takes a
// then() on the promise map's entry.
const prepared = { component: { world: 'w' } };
const preparedPromises = new Map([['d', Promise.resolve(prepared)]]);
const readyMap = new Map([['d', prepared]]);
const submit = (p) => Promise.resolve(p.component.world);
row(
  'prepared component read synchronously (removed)',
  "then() on the promise map's entry",
  await timeAsync(() => preparedPromises.get('d').then(submit)),
  1,
);
row(
  'prepared component read synchronously (removed)',
  'settled map',
  await timeAsync(() => submit(readyMap.get('d'))),
  1,
);

process.stdout.write(table(rows, ['bypass', 'variant', 'nsPerOp', 'perMessage', 'usPerMessage']) + '\n');
writeResults('micro', { quick, rows });
