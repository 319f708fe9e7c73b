// bench/flows: FlowExecutorService running a 20-node flow of built-in nodes (templates, replies,
// conditions, `when`; no components), in-process, against a hand-written JS function doing the
// same steps (the same Handlebars templates, the same conditions as plain JS), in the same run.
// Target: the executor reaches at least 0.5x the hand-written function's throughput.
import path from 'node:path';
import { root, table, writeResults } from '../lib/harness.mjs';

const quick = process.argv.includes('--quick');
const roundMs = quick ? 400 : 1_500;
const rounds = quick ? 2 : 4;

const dist = (p) => import(path.join(root, 'dist', p));
const { FlowExecutorService } = await dist('flows/flow-executor.service.js');
const { parseFlow } = await dist('flows/ygtc-loader.js');
const { validateFlow } = await dist('flows/flow-validator.js');
const Handlebars = (await import('handlebars')).default;

// 20 nodes: each renders from the message, the session, parameters and earlier payloads; three
// route on a condition, one is skipped by `when`, four send replies.
const FLOW = `id: bench20
type: messaging
parameters: { product: Greentic, limit: 3 }
nodes:
  n01: { templating.handlebars: { text: "hello {{message.text}}", reply: false }, routing: [{ to: n02 }] }
  n02: { templating.handlebars: { text: "{{n01.payload.text}} from {{message.userId}}", reply: false }, routing: [{ to: n03 }] }
  n03:
    templating.handlebars: { text: "tier {{session.tier}}", reply: false }
    routing:
      - { to: n04, condition: 'session.tier == "gold"' }
      - { to: n05 }
  n04: { reply: "Welcome back, {{message.userId}}!", routing: [{ to: n05 }] }
  n05: { templating.handlebars: { text: "{{parameters.product}} {{n02.payload.text}}", reply: false }, routing: [{ to: n06 }] }
  n06:
    templating.handlebars: { text: "visits {{session.visits}}", reply: false }
    routing:
      - { to: n07, condition: "session.visits > parameters.limit" }
      - { to: n08 }
  n07: { reply: "You have been here {{session.visits}} times", routing: [{ to: n08 }] }
  n08: { templating.handlebars: { text: "{{n05.payload.text}} / {{n06.payload.text}}", reply: false }, routing: [{ to: n09 }] }
  n09: { templating.handlebars: { text: "{{#if session.vip}}vip{{else}}regular{{/if}}", reply: false }, routing: [{ to: n10 }] }
  n10:
    reply: "Never for regular users"
    when: { condition: 'n09.payload.text == "vip"' }
    routing: [{ to: n11 }]
  n11: { templating.handlebars: { text: "{{message.channel}}:{{message.conversationId}}", reply: false }, routing: [{ to: n12 }] }
  n12: { templating.handlebars: { text: "{{n11.payload.text}}#{{message.id}}", reply: false }, routing: [{ to: n13 }] }
  n13:
    templating.handlebars: { text: "{{message.text}}", reply: false }
    routing:
      - { to: n14, condition: 'message.text != "" && session.tier != "banned"' }
      - { to: n20 }
  n14: { templating.handlebars: { text: "step 14 of {{n13.payload.text}}", reply: false }, routing: [{ to: n15 }] }
  n15: { templating.handlebars: { text: "{{n14.payload.text}} ok", reply: false }, routing: [{ to: n16 }] }
  n16: { templating.handlebars: { text: "{{n15.payload.text}} {{session.tier}}", reply: false }, routing: [{ to: n17 }] }
  n17: { templating.handlebars: { text: "{{n16.payload.text}} {{parameters.limit}}", reply: false }, routing: [{ to: n18 }] }
  n18: { reply: "Summary: {{n08.payload.text}}", routing: [{ to: n19 }] }
  n19: { templating.handlebars: { text: "{{n17.payload.text}} done", reply: false }, routing: [{ to: n20 }] }
  n20: { reply: "Bye {{message.userId}} ({{n19.payload.text}})" }
`;

const parsed = parseFlow(FLOW, 'bench20.ygtc');
if (!parsed.flow) throw new Error(parsed.issues.map((i) => i.message).join('\n'));
const errors = validateFlow(parsed.flow).filter((i) => i.severity === 'error');
if (errors.length) throw new Error(errors.map((i) => i.message).join('\n'));
const pack = {
  id: 'bench',
  version: '1.0.0',
  flows: new Map([['bench20', parsed.flow]]),
  components: new Map(),
};
const noComponents = {
  kind: 'none',
  prepare: () => Promise.reject(new Error('no components here')),
  invoke: () => Promise.reject(new Error('no components here')),
  close: async () => undefined,
};
const executor = new FlowExecutorService(noComponents);
const tenant = Object.freeze({ tenantId: 'bench', envId: 'dev', teamId: 'default' });
const session = { tier: 'gold', visits: 5, vip: false };

function message(i) {
  return {
    id: `m${i}`,
    tenant: 'bench',
    env: 'dev',
    team: 'default',
    channel: 'web',
    provider: 'webhook',
    conversationId: 'c1',
    userId: 'ada',
    sessionKey: 'bench:webhook:c1:ada',
    text: 'ping',
    attachments: [],
    timestamp: '2026-01-01T00:00:00.000Z',
  };
}

function viaExecutor(i) {
  return executor.run({
    tenant,
    message: message(i),
    pack,
    flowId: 'bench20',
    snapshot: null,
    sessionData: session,
    allowedSecrets: [],
    stepLimit: 100,
    componentDeadlineMs: 1_000,
  });
}

// The same steps by hand: the same templates, compiled once, the same conditions as plain JS.
const hb = Handlebars.create();
const t = (s) => hb.compile(s, { noEscape: true, strict: false });
const T = {
  n01: t('hello {{message.text}}'),
  n02: t('{{n01.payload.text}} from {{message.userId}}'),
  n03: t('tier {{session.tier}}'),
  n04: t('Welcome back, {{message.userId}}!'),
  n05: t('{{parameters.product}} {{n02.payload.text}}'),
  n06: t('visits {{session.visits}}'),
  n07: t('You have been here {{session.visits}} times'),
  n08: t('{{n05.payload.text}} / {{n06.payload.text}}'),
  n09: t('{{#if session.vip}}vip{{else}}regular{{/if}}'),
  n10: t('Never for regular users'),
  n11: t('{{message.channel}}:{{message.conversationId}}'),
  n12: t('{{n11.payload.text}}#{{message.id}}'),
  n13: t('{{message.text}}'),
  n14: t('step 14 of {{n13.payload.text}}'),
  n15: t('{{n14.payload.text}} ok'),
  n16: t('{{n15.payload.text}} {{session.tier}}'),
  n17: t('{{n16.payload.text}} {{parameters.limit}}'),
  n18: t('Summary: {{n08.payload.text}}'),
  n19: t('{{n17.payload.text}} done'),
  n20: t('Bye {{message.userId}} ({{n19.payload.text}})'),
};
const parameters = { product: 'Greentic', limit: 3 };

function byHand(i) {
  const m = message(i);
  const s = {
    in: {},
    parameters,
    session: { ...session },
    message: {
      id: m.id,
      text: m.text,
      userId: m.userId,
      conversationId: m.conversationId,
      channel: m.channel,
      provider: m.provider,
      timestamp: m.timestamp,
      action: null,
    },
  };
  const replies = [];
  const step = (id, reply) => {
    const text = T[id](s);
    s[id] = { payload: { text } };
    if (reply) replies.push({ text });
  };
  step('n01');
  step('n02');
  step('n03');
  if (s.session.tier === 'gold') step('n04', true);
  step('n05');
  step('n06');
  if (s.session.visits > s.parameters.limit) step('n07', true);
  step('n08');
  step('n09');
  if (s.n09.payload.text === 'vip') step('n10', true);
  step('n11');
  step('n12');
  step('n13');
  if (s.message.text !== '' && s.session.tier !== 'banned') {
    step('n14');
    step('n15');
    step('n16');
    step('n17');
    step('n18', true);
    step('n19');
  }
  step('n20', true);
  return { status: 'completed', replies };
}

// Same answers, or the comparison means nothing.
const a = await viaExecutor(0);
const b = byHand(0);
if (a.status !== 'completed' || JSON.stringify(a.replies) !== JSON.stringify(b.replies)) {
  throw new Error(
    `executor and hand-written function disagree:\n${JSON.stringify(a.replies)}\n${JSON.stringify(b.replies)}`,
  );
}
const nodesRun = a.trace.length;

async function measureExecutor(ms) {
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    for (let k = 0; k < 50; k++) await viaExecutor(n++);
  }
  return n;
}

function measureByHand(ms) {
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    for (let k = 0; k < 50; k++) byHand(n++);
  }
  return n;
}

// Warm both up (JIT, template compilation), then alternate rounds so drift hits both alike.
await measureExecutor(300);
measureByHand(300);
let execRuns = 0;
let handRuns = 0;
let execMs = 0;
let handMs = 0;
for (let r = 0; r < rounds; r++) {
  let t0 = performance.now();
  execRuns += await measureExecutor(roundMs);
  execMs += performance.now() - t0;
  t0 = performance.now();
  handRuns += measureByHand(roundMs);
  handMs += performance.now() - t0;
}
const execPerSec = Math.round((execRuns / execMs) * 1000);
const handPerSec = Math.round((handRuns / handMs) * 1000);
const ratio = execPerSec / handPerSec;
const rows = [
  {
    target: 'hand-written JS function',
    runsPerSec: handPerSec,
    usPerRun: (1e6 / handPerSec).toFixed(1),
    nodes: nodesRun,
    ratio: '1.000',
  },
  {
    target: 'FlowExecutorService',
    runsPerSec: execPerSec,
    usPerRun: (1e6 / execPerSec).toFixed(1),
    nodes: nodesRun,
    ratio: ratio.toFixed(3),
  },
];
process.stdout.write(
  `\n20-node flow of built-in nodes (${nodesRun} executed per run), in-process, ${rounds} x ${roundMs} ms rounds each\n`,
);
process.stdout.write(table(rows, ['target', 'runsPerSec', 'usPerRun', 'nodes', 'ratio']) + '\n');
const target = { ratioAtLeast: 0.5 };
const met = ratio >= target.ratioAtLeast;
process.stdout.write(
  `target (executor >= ${target.ratioAtLeast}x the hand-written function): ${met ? 'met' : 'NOT met'}\n`,
);
const file = writeResults('flows', { rounds, roundMs, nodesRun, rows, target, met });
process.stdout.write(`wrote ${path.relative(root, file)}\n`);
