import 'reflect-metadata';
import path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { assembleWatFile } from '../src/wasm/component-builder.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * Flows through the whole runner (webhook → bus → executor → egress): sub-flows with mapped input
 * and output, a sub-flow that asks a question across two messages, node retry and node timeout
 * with real WebAssembly components, the admin graph of a deployed flow, and a pack whose flows
 * call each other in a cycle refused at load.
 */

const MAIN = `id: main
type: messaging
title: Sub-flow demo
nodes:
  hello:
    reply: "Looking up {{message.text}}"
    routing: [{ to: call }]
  call:
    flow.call:
      flow: shout
      input: { word: message.text, times: 2 }
    routing:
      - to: loud
        condition: call.payload.text != ""
      - to: quiet
  loud:
    reply: "Got back: {{call.payload.text}}"
  quiet:
    reply: "Got nothing"
`;
const SHOUT = `id: shout
type: messaging
nodes:
  make:
    templating.handlebars:
      text: "{{in.word}}! {{in.word}}!"
      reply: false
`;
const ASKER = `id: asker
type: messaging
nodes:
  call:
    flow.call: { flow: ask_name, input: { greeting: "Hello" } }
    routing: [{ to: done }]
  done:
    reply: "Welcome, {{call.payload.name}}"
`;
const ASK_NAME = `id: ask_name
type: messaging
nodes:
  q:
    qa.process:
      questions: [{ id: name, prompt: "{{in.greeting}}! Your name?" }]
`;
const FLAKY = `id: flaky
type: messaging
nodes:
  call:
    component.exec: { component: flaky, operation: execute }
    retry: { max_attempts: 3, backoff_ms: 10 }
    routing: [{ to: say }]
  say:
    reply: "succeeded on attempt {{call.payload}}"
`;
const SLOW = `id: slow
type: messaging
meta: { error_reply: "That took too long." }
nodes:
  call:
    component.exec: { component: slow, operation: execute }
    timeout: { ms: 5 }
    routing: [{ to: say }]
  say:
    reply: "never"
`;

let app: INestApplication;
let base: string;

async function post(channel: string, userId: string, text: string) {
  const res = await fetch(`${base}/webhooks/webhook/acme/dev/default/${channel}?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, text }),
  });
  return {
    status: res.status,
    body: (await res.json()) as {
      status: string;
      replies: { text: string }[];
      error?: { code: string; message: string };
    },
  };
}

beforeAll(async () => {
  const fixtures = path.resolve('test/fixtures/flows-components');
  const bundle = writeTempBundle({
    packs: [
      {
        id: 'flows',
        flows: {
          'main.ygtc': MAIN,
          'shout.ygtc': SHOUT,
          'asker.ygtc': ASKER,
          'ask_name.ygtc': ASK_NAME,
          'flaky.ygtc': FLAKY,
          'slow.ygtc': SLOW,
        },
        components: {
          flaky: await assembleWatFile(path.join(fixtures, 'flaky.wat')),
          slow: await assembleWatFile(path.join(fixtures, 'slow.wat')),
        },
      },
    ],
    tenants: {
      acme: {
        packs: ['flows'],
        channels: {
          main: { pack: 'flows', flow: 'main' },
          asker: { pack: 'flows', flow: 'asker' },
          flaky: { pack: 'flows', flow: 'flaky' },
          slow: { pack: 'flows', flow: 'slow' },
        },
      },
    },
  });
  const started = await startApp({ config: { PORT: 0, GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent' } });
  app = started.app;
  base = started.url;
});

afterAll(async () => {
  await app?.close();
});

describe('flow.call through the runner', () => {
  it('runs the called flow with the mapped input and uses its output', async () => {
    const r = await post('main', 'ann', 'hey');
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('completed');
    expect(r.body.replies.map((x) => x.text)).toEqual(['Looking up hey', 'Got back: hey! hey!']);
  });

  it('parks in the sub-flow and resumes it with the next message', async () => {
    const first = await post('asker', 'bob', 'hi');
    expect(first.body.status).toBe('parked');
    expect(first.body.replies.map((x) => x.text)).toEqual(['Hello! Your name?']);
    const second = await post('asker', 'bob', 'Bob');
    expect(second.body.status).toBe('completed');
    expect(second.body.replies.map((x) => x.text)).toEqual(['Welcome, Bob']);
  });
});

describe('node retry and timeout with real components', () => {
  it('retries a component that fails twice, then succeeds', async () => {
    const r = await post('flaky', 'cat', 'go');
    expect(r.body.status).toBe('completed');
    expect(r.body.replies.map((x) => x.text)).toEqual(['succeeded on attempt 3']);
  });

  it('fires the node timeout on a component that answers too late', async () => {
    const r = await post('slow', 'dan', 'go');
    expect(r.body.status).toBe('failed');
    expect(r.body.error?.code).toBe('component_timeout');
    // Whichever fires first: the runtime's deadline on the call, or the executor's on the node.
    expect(r.body.error?.message).toMatch(/within (the node's timeout|its deadline) of 5 ms/);
    expect(r.body.replies.map((x) => x.text)).toEqual(['That took too long.']);
  });
});

describe('GET /admin/flows/{tenant}/{pack}/{flow}/graph', () => {
  it('answers the deployed flow as SVG naming every node', async () => {
    const res = await fetch(`${base}/admin/flows/acme/flows/main/graph`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
    const svg = await res.text();
    expect(XMLValidator.validate(svg)).toBe(true);
    for (const node of ['hello', 'call', 'loud', 'quiet']) expect(svg).toContain(`<title>${node}</title>`);
    expect(svg).toContain('call.payload.text != &quot;&quot;');
  });

  it('answers mermaid on request, and 404s naming what is unknown', async () => {
    const m = await fetch(`${base}/admin/flows/acme/flows/asker/graph?format=mermaid`);
    expect(await m.text()).toContain('flowchart TD');
    const flow = await fetch(`${base}/admin/flows/acme/flows/nope/graph`);
    expect(flow.status).toBe(404);
    expect(((await flow.json()) as { error: { code: string } }).error.code).toBe('flow_not_found');
    const pack = await fetch(`${base}/admin/flows/acme/other/main/graph`);
    expect(((await pack.json()) as { error: { code: string } }).error.code).toBe('pack_not_found');
    const tenant = await fetch(`${base}/admin/flows/nobody/flows/main/graph`);
    expect(tenant.status).toBe(404);
    const bad = await fetch(`${base}/admin/flows/acme/flows/main/graph?format=png`);
    expect(bad.status).toBe(400);
  });
});

describe('a pack whose flows call each other in a cycle', () => {
  it('is refused at load with the position of the call that closes the cycle', async () => {
    const bundle = writeTempBundle({
      packs: [
        {
          id: 'loop',
          flows: {
            'a.ygtc': 'id: a\ntype: messaging\nnodes:\n  call:\n    flow.call: b\n',
            'b.ygtc': 'id: b\ntype: messaging\nnodes:\n  call:\n    flow.call: { flow: a }\n',
          },
        },
      ],
      tenants: { acme: { packs: ['loop'], channels: { web: { pack: 'loop', flow: 'a' } } } },
    });
    const err = await startApp({ config: { PORT: 0, GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent' } }).then(
      async (s) => {
        await s.app.close();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(
      /b\.ygtc:5:24: error: node 'call': flow\.call closes a cycle of calls \(a -> b -> a\)/,
    );
  });
});
