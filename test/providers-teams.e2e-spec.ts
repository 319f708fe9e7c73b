import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CARD_FLOW,
  COLOUR_FLOW,
  QUESTION,
  startProviderApp,
  TICKET_CARD,
  until,
  WELCOME,
  type ProviderApp,
} from './support/fakes/provider-harness.js';
import { TeamsApiFake, type SignOptions } from './support/fakes/teams-api.fake.js';

/**
 * Microsoft Teams end to end: Bot Framework activities with a Bearer JWT checked against a local
 * OpenID metadata/JWKS, replies through the connector with a client-credentials token.
 */

const APP_ID = '8e0b0c2a-1111-4c6e-9d3b-5a7c3e1f0a11';
const APP_PASSWORD = 'bot-framework-client-secret';
const fixture = (name: string) =>
  JSON.parse(readFileSync(`test/fixtures/providers/teams/${name}`, 'utf8')) as Record<string, unknown>;

let bf: TeamsApiFake;
let h: ProviderApp;
let seq = 0;

/** The documented personal-chat message, from this test's user, pointing at the fake connector. */
function message(
  user: string,
  text: string,
  extra: Record<string, unknown> = {},
  id = `17${Date.now()}${++seq}`,
): Record<string, unknown> {
  const a = fixture('activity.message.json');
  return {
    ...a,
    id,
    text,
    serviceUrl: bf.serviceUrl,
    from: { ...(a['from'] as object), id: `29:${user}`, name: user },
    conversation: { ...(a['conversation'] as object), id: `a:${user}` },
    ...extra,
  };
}

async function deliver(activity: Record<string, unknown>, sign: SignOptions | null = {}, channel = 'teams') {
  const res = await fetch(`${h.url}/webhooks/teams/acme/dev/default/${channel}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(sign ? { authorization: `Bearer ${await bf.sign(sign)}` } : {}),
    },
    body: JSON.stringify(activity),
  });
  return { status: res.status, text: await res.text() };
}

const activitiesTo = (user: string) =>
  bf.activities().filter((a) => (a.body['conversation'] as { id: string }).id === `a:${user}`);

beforeAll(async () => {
  bf = await new TeamsApiFake(APP_ID, APP_PASSWORD).start();
  const settings = { app_id: APP_ID, openid_metadata_url: bf.metadataUrl, token_endpoint: bf.tokenEndpoint };
  h = await startProviderApp({
    channels: {
      teams: { provider: 'teams', settings, secret_refs: { app_password: 'teams_app_password' } },
      teamscolour: {
        provider: 'teams',
        flow: 'colour',
        settings,
        secret_refs: { app_password: 'teams_app_password' },
      },
      teamscard: {
        provider: 'teams',
        flow: 'card',
        settings,
        secret_refs: { app_password: 'teams_app_password' },
      },
    },
    flows: { 'colour.ygtc': COLOUR_FLOW, 'card.ygtc': CARD_FLOW },
    secrets: { teams_app_password: APP_PASSWORD },
  });
});

afterAll(async () => {
  await h?.close();
  await bf?.close();
});

describe('Teams provider', () => {
  it('acknowledges conversationUpdate (bot added) without running a flow', async () => {
    const a = { ...fixture('activity.conversationUpdate.json'), serviceUrl: bf.serviceUrl };
    const r = await deliver(a);
    expect(r.status).toBe(200);
    expect(h.accepted).not.toHaveBeenCalled();
  });

  it('holds the two-turn demo conversation through the connector, exactly', async () => {
    const first = message('megan', 'Hello Teams TestBot');
    expect((await deliver(first)).status).toBe(200);
    await until(() => activitiesTo('megan').length === 2, 'welcome and question');
    const [welcome, question] = activitiesTo('megan');
    expect(welcome!.req.method).toBe('POST');
    expect(welcome!.req.path).toBe(`/amer/v3/conversations/a:megan/activities`);
    expect(welcome!.req.headers['authorization']).toBe(`Bearer ${bf.accessToken}`);
    expect(welcome!.req.headers['content-type']).toBe('application/json');
    const envelope = {
      type: 'message',
      from: { id: '28:c9e8c047-2a74-40a2-b28a-b162d5f5327c', name: 'Teams TestBot' },
      recipient: { id: '29:megan', name: 'megan' },
      conversation: { id: 'a:megan' },
      replyToId: first['id'],
      textFormat: 'plain',
    };
    expect(welcome!.body).toEqual({ ...envelope, text: WELCOME });
    expect(question!.body).toEqual({ ...envelope, text: QUESTION });
    // One client-credentials token serves every send until it nears expiry.
    expect(bf.tokenRequests()).toHaveLength(1);
    expect(Object.fromEntries(new URLSearchParams(bf.tokenRequests()[0]!.body.toString()))).toEqual({
      grant_type: 'client_credentials',
      client_id: APP_ID,
      client_secret: APP_PASSWORD,
      scope: 'https://api.botframework.com/.default',
    });

    const second = message('megan', 'Paris');
    await deliver(second);
    await until(() => activitiesTo('megan').length === 3, 'forecast');
    expect(activitiesTo('megan')[2]!.body).toEqual({
      ...envelope,
      replyToId: second['id'],
      text: await h.forecast('Paris'),
    });
  });

  it('refuses a JWT signed by an unknown key, for another audience, or expired (401), never reaching a flow', async () => {
    const before = h.accepted.mock.calls.length;
    const unknown = await deliver(message('eve', 'hi'), { unknownKey: true });
    const audience = await deliver(message('eve', 'hi'), { audience: 'another-bot' });
    const expired = await deliver(message('eve', 'hi'), { expiresIn: -600 });
    const missing = await deliver(message('eve', 'hi'), null);
    expect([unknown.status, audience.status, expired.status, missing.status]).toEqual([401, 401, 401, 401]);
    expect(JSON.parse(unknown.text).error.message).toMatch(/unknown key/);
    expect(JSON.parse(audience.text).error.message).toMatch(/claim 'aud'/);
    expect(JSON.parse(expired.text).error.message).toMatch(/expired/);
    // A token for another serviceUrl cannot make us post elsewhere.
    const elsewhere = await deliver(message('eve', 'hi', { serviceUrl: 'http://127.0.0.1:9/evil/' }));
    expect(elsewhere.status).toBe(403);
    expect(h.accepted.mock.calls.length).toBe(before);
    expect(activitiesTo('eve')).toEqual([]);
    const reasons = h
      .warnings()
      .filter((w) => w.msg === 'request refused' && w.obj['tenant'] === 'acme')
      .map((w) => w.obj['reason']);
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/unknown key/),
        expect.stringMatching(/claim 'aud'/),
        expect.stringMatching(/expired/),
      ]),
    );
  });

  it('answers a redelivered activity (same id) once', async () => {
    const a = message('ryan', 'hello');
    await deliver(a);
    await deliver(a);
    await deliver(message('ryan', 'Oslo'));
    await until(() => activitiesTo('ryan').length >= 3, 'the next turn');
    expect(activitiesTo('ryan').map((x) => x.body['text'])).toEqual([
      WELCOME,
      QUESTION,
      await h.forecast('Oslo'),
    ]);
  });

  it('sends choices and cards as Adaptive Cards and reads an Action.Submit', async () => {
    await deliver(message('alex', 'hi'), {}, 'teamscolour');
    await until(() => activitiesTo('alex').length === 1, 'the question');
    expect(activitiesTo('alex')[0]!.body['attachments']).toEqual([
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        content: {
          type: 'AdaptiveCard',
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          version: '1.4',
          body: [{ type: 'TextBlock', text: 'Favourite colour?', wrap: true }],
          actions: [
            { type: 'Action.Submit', title: 'Red', data: { choice: 'Red' } },
            { type: 'Action.Submit', title: 'Blue', data: { choice: 'Blue' } },
          ],
        },
      },
    ]);
    await deliver(message('alex', '', { value: { choice: 'Blue' } }), {}, 'teamscolour');
    await until(() => activitiesTo('alex').length === 2, 'the card');
    const card = (activitiesTo('alex')[1]!.body['attachments'] as { content: { body: unknown[] } }[])[0]!
      .content;
    expect(card.body).toEqual([
      { type: 'TextBlock', text: 'Your colour', size: 'Medium', weight: 'Bolder', wrap: true },
      { type: 'TextBlock', text: 'You chose Blue.', wrap: true },
      { type: 'TextBlock', text: 'Blue', wrap: true },
    ]);
  });

  it('sends an Adaptive Card reply as the card; a Submit (value, no text) and an Action.Execute invoke come back as the action, with the locale', async () => {
    await deliver(message('adele', 'hi', { locale: 'en-GB' }), {}, 'teamscard');
    await until(() => activitiesTo('adele').length === 2, 'the echo and the card');
    expect(activitiesTo('adele')[1]!.body['attachments']).toEqual([
      { contentType: 'application/vnd.microsoft.card.adaptive', content: TICKET_CARD },
    ]);
    // What Teams posts for an Action.Submit: the data as `value`, no text.
    const submit = message('adele', '', { locale: 'en-GB', value: { action_id: 'close', ticket: 'INC-7' } });
    delete submit['text'];
    expect((await deliver(submit, {}, 'teamscard')).status).toBe(200);
    await until(() => activitiesTo('adele').length === 4, 'the echo of the Submit');
    expect(activitiesTo('adele')[2]!.body['text']).toBe('action=close');
    const execute = message('adele', '', {
      type: 'invoke',
      name: 'adaptiveCard/action',
      locale: 'fr-FR',
      value: { action: { type: 'Action.Execute', verb: 'escalate', data: { action_id: 'escalate' } } },
    });
    delete execute['text'];
    const r = await deliver(execute, {}, 'teamscard');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({
      statusCode: 200,
      type: 'application/vnd.microsoft.activity.message',
      value: 'ok',
    });
    await until(() => activitiesTo('adele').length === 6, 'the echo of the Execute');
    expect(activitiesTo('adele')[4]!.body['text']).toBe('action=escalate');
    const envs = h.envelopes().filter((e) => e.conversationId === 'a:adele');
    expect(envs.map((e) => [e.text, e.locale, e.action])).toEqual([
      ['hi', 'en-GB', undefined],
      ['close', 'en-GB', { type: 'card_submit', action_id: 'close', ticket: 'INC-7' }],
      ['escalate', 'fr-FR', { type: 'card_submit', action_id: 'escalate', verb: 'escalate' }],
    ]);
  });

  it('retries a connector 503 and delivers once', async () => {
    bf.script.push({
      status: 503,
      headers: { 'retry-after': '0' },
      body: { error: { code: 'ServiceUnavailable', message: 'busy' } },
    });
    await deliver(message('nina', 'hi'));
    await until(() => activitiesTo('nina').length === 2, 'replies after the 503');
    expect(activitiesTo('nina').map((x) => x.body['text'])).toEqual([WELCOME, QUESTION]);
  });
});
