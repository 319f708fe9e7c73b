import { readFileSync } from 'node:fs';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { FakeServer, type FakeRequest, type FakeResponse } from './fake-server.js';

const OPENID = readFileSync(path.resolve('test/fixtures/providers/teams/openid-configuration.json'), 'utf8');
const TOKEN_RESPONSE = JSON.parse(
  readFileSync(path.resolve('test/fixtures/providers/teams/token.response.json'), 'utf8'),
) as {
  access_token: string;
  expires_in: number;
};

export interface SignOptions {
  audience?: string;
  issuer?: string;
  serviceUrl?: string;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  /** Sign with a key that is not in the published JWKS. */
  unknownKey?: boolean;
}

/**
 * The Bot Framework on 127.0.0.1: the channel → bot OpenID metadata and JWKS (an RS256 key with
 * `endorsements`), the client-credentials token endpoint, and the connector's
 * `POST {serviceUrl}/v3/conversations/{id}/activities`. It also signs the Bearer JWTs a channel sends.
 */
export class TeamsApiFake {
  readonly server: FakeServer;
  readonly script: FakeResponse[] = [];
  private readonly delivered: FakeRequest[] = [];
  private keys!: { privateKey: CryptoKey; jwk: JWK };
  private rogue!: CryptoKey;
  private seq = 0;

  constructor(
    readonly appId: string,
    readonly appPassword: string,
  ) {
    this.server = new FakeServer((req) => this.handle(req));
  }

  async start(): Promise<this> {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = {
      ...(await exportJWK(publicKey)),
      kid: 'test-key-1',
      use: 'sig',
      alg: 'RS256',
      endorsements: ['msteams', 'webchat'],
    };
    this.keys = { privateKey, jwk };
    this.rogue = (await generateKeyPair('RS256')).privateKey;
    await this.server.listen();
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  get metadataUrl(): string {
    return `${this.url}/v1/.well-known/openidconfiguration`;
  }

  get tokenEndpoint(): string {
    return `${this.url}/botframework.com/oauth2/v2.0/token`;
  }

  /** The activity's serviceUrl: the connector lives here. */
  get serviceUrl(): string {
    return `${this.url}/amer/`;
  }

  get accessToken(): string {
    return TOKEN_RESPONSE.access_token;
  }

  async sign(o: SignOptions = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ serviceurl: o.serviceUrl ?? this.serviceUrl })
      .setProtectedHeader({ alg: 'RS256', kid: o.unknownKey ? 'rogue-key' : 'test-key-1', typ: 'JWT' })
      .setIssuer(o.issuer ?? 'https://api.botframework.com')
      .setAudience(o.audience ?? this.appId)
      .setNotBefore(now - 60)
      .setIssuedAt(now - 60)
      .setExpirationTime(now + (o.expiresIn ?? 3600))
      .sign(o.unknownKey ? this.rogue : this.keys.privateKey);
  }

  /** Activities the connector accepted. */
  activities(): { req: FakeRequest; body: Record<string, unknown> }[] {
    return this.delivered.map((req) => ({
      req,
      body: JSON.parse(req.body.toString('utf8')) as Record<string, unknown>,
    }));
  }

  tokenRequests(): FakeRequest[] {
    return this.server.requests.filter((r) => r.path === '/botframework.com/oauth2/v2.0/token');
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private handle(req: FakeRequest): FakeResponse {
    if (req.method === 'GET' && req.path === '/v1/.well-known/openidconfiguration') {
      return { status: 200, body: OPENID.replace('{JWKS_URI}', `${this.url}/v1/.well-known/keys`) };
    }
    if (req.method === 'GET' && req.path === '/v1/.well-known/keys')
      return { status: 200, body: { keys: [this.keys.jwk] } };
    if (req.method === 'POST' && req.path === '/botframework.com/oauth2/v2.0/token') {
      const form = new URLSearchParams(req.body.toString('utf8'));
      if (
        form.get('grant_type') !== 'client_credentials' ||
        form.get('client_id') !== this.appId ||
        form.get('client_secret') !== this.appPassword ||
        form.get('scope') !== 'https://api.botframework.com/.default'
      ) {
        return {
          status: 401,
          body: {
            error: 'invalid_client',
            error_description: 'AADSTS7000215: Invalid client secret provided.',
          },
        };
      }
      return { status: 200, body: TOKEN_RESPONSE };
    }
    const m = /^\/amer\/v3\/conversations\/([^/]+)\/activities$/.exec(req.path);
    if (req.method === 'POST' && m) {
      const scripted = this.script.shift();
      if (scripted) return scripted;
      if (req.headers['authorization'] !== `Bearer ${this.accessToken}`) {
        return {
          status: 401,
          body: {
            error: { code: 'Unauthorized', message: 'Authorization has been denied for this request.' },
          },
        };
      }
      this.delivered.push(req);
      return { status: 201, body: { id: `1:${++this.seq}` } };
    }
    return { status: 404, body: { error: { code: 'NotFound', message: req.path } } };
  }
}
