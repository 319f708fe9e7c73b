import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TeamsApiFake } from '../../../../test/support/fakes/teams-api.fake.js';
import { BotFrameworkAuth } from './bot-framework-auth.js';
import { toTeamsActivity } from './teams.provider.js';

const APP_ID = '8e0b0c2a-1111-4c6e-9d3b-5a7c3e1f0a11';
let fake: TeamsApiFake;
const auth = new BotFrameworkAuth();
const verify = async (token: string, extra: { channelId?: string; serviceUrl?: string } = {}) =>
  auth.verify(`Bearer ${token}`, {
    metadataUrl: fake.metadataUrl,
    appId: APP_ID,
    channelId: 'msteams',
    serviceUrl: fake.serviceUrl,
    ...extra,
  });

beforeAll(async () => {
  fake = await new TeamsApiFake(APP_ID, 'pw').start();
});
afterAll(() => fake.close());

describe('Bot Framework JWT verification (OpenID metadata + JWKS)', () => {
  it('accepts a token signed by a published key for this app and serviceUrl', async () => {
    const r = await verify(await fake.sign());
    expect(r.serviceUrl).toBe(fake.serviceUrl);
    expect(r.payload.aud).toBe(APP_ID);
  });

  it('refuses a key outside the JWKS, another audience, an expired token, another issuer', async () => {
    await expect(verify(await fake.sign({ unknownKey: true }))).rejects.toThrow(/unknown key|signature/);
    await expect(verify(await fake.sign({ audience: 'someone-else' }))).rejects.toThrow(/claim 'aud'/);
    await expect(verify(await fake.sign({ expiresIn: -600 }))).rejects.toThrow(/expired/);
    await expect(verify(await fake.sign({ issuer: 'https://evil.example' }))).rejects.toThrow(/claim 'iss'/);
    await expect(
      auth.verify(undefined, { metadataUrl: fake.metadataUrl, appId: APP_ID }),
    ).rejects.toMatchObject({ httpStatus: 401 });
  });

  it('refuses a key not endorsed for the channel and a serviceUrl the token does not vouch for', async () => {
    await expect(verify(await fake.sign(), { channelId: 'slack' })).rejects.toMatchObject({
      httpStatus: 403,
    });
    await expect(
      verify(await fake.sign(), { serviceUrl: 'https://attacker.example/' }),
    ).rejects.toMatchObject({ httpStatus: 403 });
  });

  it('answers 503 (retry later) when the metadata cannot be read', async () => {
    await expect(
      auth.verify(`Bearer ${await fake.sign()}`, { metadataUrl: 'http://127.0.0.1:1/none', appId: APP_ID }),
    ).rejects.toMatchObject({ httpStatus: 503 });
  });
});

describe('Adaptive Card mapping', () => {
  it('sends text plainly and choices as Action.Submit', () => {
    expect(toTeamsActivity({ text: 'hi' })).toEqual({ text: 'hi', textFormat: 'plain' });
    const a = toTeamsActivity({ text: 'Colour?', choices: ['Red'] })!;
    expect(a['attachments']).toEqual([
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        content: {
          type: 'AdaptiveCard',
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          version: '1.4',
          body: [{ type: 'TextBlock', text: 'Colour?', wrap: true }],
          actions: [{ type: 'Action.Submit', title: 'Red', data: { choice: 'Red' } }],
        },
      },
    ]);
  });

  it('passes an Adaptive Card from the flow through', () => {
    const card = { type: 'AdaptiveCard', version: '1.5', body: [] };
    expect(toTeamsActivity({ card })).toEqual({
      attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content: card }],
    });
  });
});
