import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Logger, type DynamicModule } from '@nestjs/common';
import type { RunnerApp } from '../../../src/bootstrap.js';
import { parse, stringify } from 'yaml';
import { vi, type MockInstance } from 'vitest';
import { startApp } from '../../../src/bootstrap.js';
import { IngressService } from '../../../src/messaging/ingress.service.js';
import type { MessageEnvelope } from '../../../src/core/message-envelope.js';
import { fixturePath } from '../../fixtures/fixture-paths.js';
import { writeTempBundle, type TempChannel } from '../temp-bundle.js';
import type { SlackApiFake } from './slack-api.fake.js';
import type { TeamsApiFake } from './teams-api.fake.js';
import type { TelegramApiFake } from './telegram-api.fake.js';
import type { WhatsAppApiFake } from './whatsapp-api.fake.js';

export const WEATHER_FLOW = readFileSync(
  path.resolve('examples/demo/packs/demo/flows/weather_bot.ygtc'),
  'utf8',
);
export const WELCOME = "Hi there! Let's get your weather forecast.";
export const QUESTION = 'What location would you like a forecast for?';
/** The demo flow's `error_reply`: its answer when the forecast component failed (or hit its deadline). */
export const WEATHER_UNAVAILABLE = (parse(WEATHER_FLOW) as { meta: { error_reply: string } }).meta
  .error_reply;

/** A one-question flow with choices, for the providers' rich replies (buttons, keyboards, cards). */
export const COLOUR_FLOW = `id: colour
type: messaging
nodes:
  ask:
    qa.process:
      questions:
        - { id: colour, prompt: "Favourite colour?", answer_type: choice, choices: [Red, Blue] }
    routing:
      - to: done
  done:
    reply:
      text: "You chose {{in.colour}}."
      card:
        title: "Your colour"
        text: "{{in.colour}}"
        buttons: [Again]
    routing:
      - out: true
`;

/** An Adaptive Card as upstream's card component renders them: heading, facts, Submit buttons with data, a link. */
export const TICKET_CARD = {
  type: 'AdaptiveCard',
  $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
  version: '1.5',
  body: [
    { type: 'TextBlock', text: 'Ticket INC-7', weight: 'Bolder', size: 'Medium' },
    { type: 'FactSet', facts: [{ title: 'Status', value: 'Open' }] },
  ],
  actions: [
    { type: 'Action.Submit', title: 'Close', data: { action_id: 'close', ticket: 'INC-7' } },
    // Longer than Telegram's 64-byte callback_data, however it is encoded.
    {
      type: 'Action.Submit',
      title: 'Escalate',
      data: { action_id: 'escalate', ticket: 'INC-7', note: 'needs a manager before the end of the day' },
    },
    { type: 'Action.OpenUrl', title: 'Portal', url: 'https://itsm.example.com/INC-7' },
  ],
};

/**
 * Answers every message with the card data it carried and then the ticket card, so a tap on the
 * card comes back as the next message and shows up in the next echo.
 */
export const CARD_FLOW = `id: card
type: messaging
nodes:
  echo:
    reply:
      text: "action={{message.action.action_id}}"
    routing:
      - to: show
  show:
    reply:
      card: ${JSON.stringify(TICKET_CARD)}
    routing:
      - out: true
`;

export interface ChannelSpec {
  provider: string;
  /** Flow of the demo pack (default weather_bot). */
  flow?: string;
  settings?: Record<string, unknown>;
  secret_refs?: Record<string, string>;
}

export interface ProviderApp {
  app: RunnerApp;
  url: string;
  /** Calls of IngressService.accept: what reached the bus (and so a flow). */
  accepted: MockInstance<IngressService['accept']>;
  /** The envelopes put on the bus, as the flows receive them. */
  envelopes: () => MessageEnvelope[];
  /** `warn` log lines (refusals are logged there with tenant and reason). */
  warnings: () => { obj: Record<string, unknown>; msg: string }[];
  /** The forecast text the demo flow gives for a city, taken from the generic webhook channel. */
  forecast(city: string): Promise<string>;
  close(): Promise<void>;
}

/** The platform fakes a runner with every built-in provider's channel talks to. */
export interface ProviderFakes {
  slack: SlackApiFake;
  teams: TeamsApiFake;
  telegram: TelegramApiFake;
  whatsapp: WhatsAppApiFake;
}

/** What each platform signs its calls with (the API tokens come from the fakes). */
export interface SigningSecrets {
  slackSigning: string;
  telegramWebhook: string;
  whatsappAppSecret: string;
  directLine: string;
}

/**
 * Channels `slack`, `teams`, `telegram`, `whatsapp` and `webchat` of the demo bot, pointed at the
 * fakes, and the secrets they name: the `channels` and `secrets` of startProviderApp.
 */
export function everyProviderChannel(
  f: ProviderFakes,
  s: SigningSecrets,
): { channels: Record<string, ChannelSpec>; secrets: Record<string, string> } {
  return {
    channels: {
      slack: {
        provider: 'slack',
        settings: { api_base_url: f.slack.url },
        secret_refs: { signing_secret: 'slack_signing_secret', bot_token: 'slack_bot_token' },
      },
      teams: {
        provider: 'teams',
        settings: {
          app_id: f.teams.appId,
          openid_metadata_url: f.teams.metadataUrl,
          token_endpoint: f.teams.tokenEndpoint,
        },
        secret_refs: { app_password: 'teams_app_password' },
      },
      telegram: {
        provider: 'telegram',
        settings: { api_base_url: f.telegram.url },
        secret_refs: { webhook_secret: 'tg_webhook_secret', bot_token: 'tg_bot_token' },
      },
      whatsapp: {
        provider: 'whatsapp',
        settings: { api_base_url: f.whatsapp.url, phone_number_id: f.whatsapp.phoneNumberId },
        secret_refs: { app_secret: 'wa_app_secret', access_token: 'wa_access_token' },
      },
      webchat: { provider: 'webchat', secret_refs: { directline_secret: 'dl_secret' } },
    },
    secrets: {
      slack_signing_secret: s.slackSigning,
      slack_bot_token: f.slack.botToken,
      teams_app_password: f.teams.appPassword,
      tg_webhook_secret: s.telegramWebhook,
      tg_bot_token: f.telegram.botToken,
      wa_app_secret: s.whatsappAppSecret,
      wa_access_token: f.whatsapp.accessToken,
      dl_secret: s.directLine,
    },
  };
}

/**
 * Starts the runner on a temp bundle: tenant `acme` (and `globex`) with the demo weather bot on
 * the given channels plus a generic `web` channel, provider secrets in a `file` backend.
 */
export async function startProviderApp(opts: {
  channels: Record<string, ChannelSpec>;
  /** Logical secret name → value, stored as `acme/dev/<name>` (and `globex/dev/<name>`). */
  secrets: Record<string, string>;
  /** Extra flows for the demo pack: file name → `.ygtc` text. */
  flows?: Record<string, string>;
  config?: Record<string, string | number | undefined>;
  imports?: DynamicModule['imports'];
}): Promise<ProviderApp> {
  const channels: Record<string, TempChannel> = { web: { pack: 'demo', flow: 'weather_bot' } };
  for (const [id, c] of Object.entries(opts.channels))
    channels[id] = { pack: 'demo', flow: 'weather_bot', ...c } as TempChannel;
  const tenant = {
    packs: ['demo'],
    channels,
    secrets: { backend: 'file', options: { path: 'secrets.yaml' } },
  };
  const bundle = writeTempBundle({
    packs: [
      {
        id: 'demo',
        flows: { 'weather_bot.ygtc': WEATHER_FLOW, ...(opts.flows ?? {}) },
        components: { weather_api: fixturePath('weather_api') },
      },
    ],
    tenants: { acme: tenant, globex: tenant },
  });
  const secrets: Record<string, string> = {};
  for (const t of ['acme', 'globex'])
    for (const [k, v] of Object.entries(opts.secrets))
      secrets[`${t}/dev/${k}`] = t === 'acme' ? v : `${v}-globex`;
  writeFileSync(path.join(path.dirname(bundle), 'secrets.yaml'), stringify(secrets));

  const warn = vi.spyOn(Logger.prototype, 'warn');
  const { app, url } = await startApp({
    config: { PORT: 0, GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent', ...(opts.config ?? {}) },
    imports: opts.imports,
  });
  const accepted = vi.spyOn(app.get(IngressService), 'accept');
  const enveloped = vi.spyOn(app.get(IngressService), 'envelope');
  const cache = new Map<string, string>();
  return {
    app,
    url,
    accepted,
    envelopes: () =>
      enveloped.mock.results.filter((r) => r.type === 'return').map((r) => r.value as MessageEnvelope),
    warnings: () =>
      warn.mock.calls.map((c) => ({
        obj: (typeof c[0] === 'object' && c[0] ? c[0] : {}) as Record<string, unknown>,
        msg: String(c[1] ?? c[0]),
      })),
    async forecast(city: string) {
      const hit = cache.get(city);
      if (hit) return hit;
      const post = (user: string, text: string) =>
        fetch(`${url}/webhooks/webhook/acme/dev/default/web?wait=true`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId: user, text }),
        }).then((r) => r.json() as Promise<{ replies: { text: string }[] }>);
      // The flow's error reply is no reference: on a loaded machine the component can miss its
      // deadline once, and the page's own turn would then be compared with the wrong text.
      const answers: string[] = [];
      for (let attempt = 1; attempt <= 3; attempt++) {
        const user = `ref-${city}-${Date.now()}-${attempt}`;
        await post(user, 'hi');
        const text = (await post(user, city)).replies[0]!.text;
        if (text !== WEATHER_UNAVAILABLE) {
          cache.set(city, text);
          return text;
        }
        answers.push(text);
      }
      throw new Error(`no forecast for ${city} in 3 tries: ${JSON.stringify(answers)}`);
    },
    async close() {
      warn.mockRestore();
      await app.close();
    },
  };
}

/** Waits until `cond` holds; fails naming what was awaited. */
export async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
