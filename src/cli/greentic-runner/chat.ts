import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Logger } from '@nestjs/common';
import type { FlowRunner, NodeTrace } from '../../flows/flow-run.types.js';
import {
  adaptiveCardFallback,
  fallbackText,
  isAdaptiveCard,
} from '../../messaging/providers/adaptive-card-text.js';
import { envVarName } from '../../secrets/backends/env-secrets.backend.js';
import { mapSecretName } from '../../secrets/secrets.service.js';
import type { Bundle } from '../../tenancy/bundle.types.js';
import {
  PACK_ENV,
  PACK_TEAM,
  PACK_TENANT,
  PACK_WEBHOOK_CHANNEL,
  packOnlyBundle,
  readPackEntrypoint,
} from './pack-bundle.js';
import { nodeLine } from './test/test.command.js';

/**
 * `greentic-runner chat`: a REPL over the path a webhook message takes. The runner starts in this
 * process on embedded defaults (memory bus and sessions, a free loopback port); each line is POSTed
 * to the channel's generic webhook with `?wait=true`, and the replies are printed (cards as their
 * text fallback, as Slack or Telegram show them). `--trace` prints each run's per-node transcript
 * in `greentic-runner test`'s format.
 */

export interface ChatOptions {
  pack?: string;
  bundle?: string;
  /** `tenant/env/team/channel` of the bundle; a `--pack` chat uses the pack's `web` channel. */
  channel?: string;
  trace?: boolean;
  user?: string;
}

export interface ChatIO {
  out(line: string): void;
  err(line: string): void;
}

/** 0: the user left; 2: bad options, or the runner did not start. */
export const CHAT_EXIT_OK = 0;
export const CHAT_EXIT_USAGE = 2;

const CHANNEL = /^[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+$/;

interface WebhookReply {
  text?: string;
  card?: Record<string, unknown>;
  choices?: string[];
}

interface WebhookAnswer {
  status?: string;
  replies?: WebhookReply[];
  error?: { code?: string; message?: string };
  message?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A reply as terminal lines: its text, a card's text fallback (body, buttons, links), its choices. */
export function replyLines(r: WebhookReply): string[] {
  const lines: string[] = [];
  const card = isRecord(r.card) && isAdaptiveCard(r.card) ? r.card : undefined;
  const cardText = card ? fallbackText(adaptiveCardFallback(card), { links: true }) : undefined;
  if (r.text !== undefined && r.text !== '' && r.text !== cardText) lines.push(`bot> ${r.text}`);
  if (cardText !== undefined) {
    const [first, ...rest] = cardText.split('\n');
    lines.push(`bot> [card] ${first ?? ''}`, ...rest.map((l) => `     ${l}`));
  } else if (r.card !== undefined) {
    lines.push(`bot> [card] ${JSON.stringify(r.card)}`);
  }
  if (r.choices && r.choices.length > 0)
    lines.push(`     choices: ${r.choices.map((c, i) => `[${i + 1}] ${c}`).join('  ')}`);
  return lines;
}

async function target(
  o: ChatOptions,
  cwd: string,
): Promise<{ bundle?: Bundle; config: Record<string, string>; channel: string; about: string }> {
  if ((o.pack === undefined) === (o.bundle === undefined))
    throw new UsageError('give --pack FILE, or --bundle FILE with --channel tenant/env/team/channel');
  if (o.pack !== undefined) {
    if (o.channel !== undefined)
      throw new UsageError('--channel goes with --bundle (a --pack chat uses the pack’s web channel)');
    const pack = await readPackEntrypoint(o.pack, cwd);
    // packOnlyBundle's webchat channel needs a Direct Line secret; nobody talks to it here.
    const secretVar = envVarName(
      mapSecretName({ tenantId: PACK_TENANT, envId: PACK_ENV }, 'directline_secret'),
    );
    process.env[secretVar] ||= randomBytes(32).toString('base64url');
    return {
      bundle: packOnlyBundle(pack),
      config: {},
      channel: `${PACK_TENANT}/${PACK_ENV}/${PACK_TEAM}/${PACK_WEBHOOK_CHANNEL}`,
      about: `pack ${pack.id}@${pack.version}, flow ${pack.flow}`,
    };
  }
  if (o.channel === undefined || !CHANNEL.test(o.channel))
    throw new UsageError(
      '--bundle needs --channel tenant/env/team/channel (a generic webhook channel of the bundle)',
    );
  const file = path.resolve(cwd, o.bundle!);
  const { loadBundle } = await import('../../tenancy/bundle.loader.js');
  const bundle = loadBundle(file);
  const [t, e, team, ch] = o.channel.split('/') as [string, string, string, string];
  const binding = bundle.tenants.get(t)?.envs.get(e)?.teams.get(team)?.channels.get(ch);
  if (!binding) throw new UsageError(`bundle ${o.bundle} has no channel ${o.channel}`);
  if (binding.provider !== 'webhook')
    throw new UsageError(
      `channel ${o.channel} uses provider '${binding.provider}': chat talks to generic webhook channels (provider: webhook)`,
    );
  return {
    config: { GREENTIC_BUNDLE: file },
    channel: o.channel,
    about: `bundle ${o.bundle}, pack ${binding.pack}, flow ${binding.flow}`,
  };
}

class UsageError extends Error {}

const HELP = [
  '  <text>           send a message',
  '  /action <json>   press a card button: send its Submit data, e.g. /action {"action":"track"}',
  '  /quit, Ctrl-D    leave',
];

/** A typed line as the webhook body's message part; a string is what is wrong with it. */
export function messageOf(line: string): { text: string } | { action: Record<string, unknown> } | string {
  if (!line.startsWith('/action')) return { text: line };
  let data: unknown;
  try {
    data = JSON.parse(line.slice('/action'.length).trim());
  } catch (e) {
    return `/action needs the button's data as JSON: ${(e as Error).message}`;
  }
  return isRecord(data) ? { action: data } : '/action needs a JSON object, e.g. /action {"action":"track"}';
}

/** Runs the REPL until end of input or `/quit`; returns the exit code. */
export async function runChat(
  o: ChatOptions,
  io: ChatIO,
  input: NodeJS.ReadableStream = process.stdin,
  output: NodeJS.WritableStream = process.stdout,
  cwd = process.cwd(),
): Promise<number> {
  let t: Awaited<ReturnType<typeof target>>;
  try {
    t = await target(o, cwd);
  } catch (e) {
    io.err(`greentic-runner chat: ${(e as Error).message}`);
    return CHAT_EXIT_USAGE;
  }
  // The conversation is the output: the runner's logs would interleave with it.
  Logger.overrideLogger(['error', 'fatal']);
  const traces: NodeTrace[] = [];
  const traceRunner = (runner: FlowRunner): FlowRunner => ({
    run: async (runInput) => {
      const r = await runner.run({ ...runInput, traceDetail: true });
      traces.push(...r.trace);
      return r;
    },
  });
  const { startApp } = await import('../../bootstrap.js');
  let started: Awaited<ReturnType<typeof startApp>>;
  try {
    started = await startApp({
      config: {
        PORT: '0',
        HOST: '127.0.0.1',
        GREENTIC_BUS: 'memory',
        GREENTIC_SESSIONS: 'memory',
        LOG_LEVEL: 'error',
        ...t.config,
      },
      ...(t.bundle ? { bundle: t.bundle } : {}),
      ...(o.trace ? { decorateFlowRunner: traceRunner } : {}),
    });
  } catch (e) {
    io.err(`greentic-runner chat: the runner did not start: ${(e as Error).message}`);
    return CHAT_EXIT_USAGE;
  }
  const { app, url } = started;
  const webhook = `${url}/webhooks/webhook/${t.channel}?wait=true`;
  const user = o.user ?? 'chat-user';
  const conversationId = `chat-${randomUUID()}`;
  io.out(`chatting with ${t.about} on ${t.channel} as ${user}; /help for commands, /quit or Ctrl-D to leave`);

  const rl = createInterface({
    input,
    output,
    prompt: 'you> ',
    terminal: 'isTTY' in output && output.isTTY === true,
  });
  try {
    rl.prompt();
    for await (const raw of rl) {
      const line = raw.trim();
      if (line === '/quit' || line === '/exit') break;
      if (line === '' || line === '/help') {
        if (line === '/help') for (const l of HELP) io.out(l);
        rl.prompt();
        continue;
      }
      const message = messageOf(line);
      if (typeof message === 'string') {
        io.err(message);
        rl.prompt();
        continue;
      }
      traces.length = 0;
      const res = await fetch(webhook, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: user, conversationId, ...message }),
      }).catch((e: Error) => e);
      if (res instanceof Error) {
        io.err(`greentic-runner chat: ${res.message}`);
      } else {
        const body = (await res.json().catch(() => ({}))) as WebhookAnswer;
        for (const n of traces) io.out(nodeLine(n));
        if (!res.ok) io.err(`runner answered ${res.status}: ${body.message ?? JSON.stringify(body)}`);
        for (const r of body.replies ?? []) for (const l of replyLines(r)) io.out(l);
        if (body.status === 'failed' && body.error)
          io.out(
            `     (flow failed: ${body.error.code ?? 'error'}${body.error.message ? `: ${body.error.message}` : ''})`,
          );
      }
      rl.prompt();
    }
  } finally {
    rl.close();
    await app.close();
  }
  return CHAT_EXIT_OK;
}
