import { randomUUID } from 'node:crypto';
import { FakeServer, type FakeRequest, type FakeResponse } from './fake-server.js';

const RESOURCE = 'https://vault.azure.net';

/**
 * Azure Key Vault's data plane as documented, over https (a self-signed certificate made per run):
 * `GET /secrets/{name}/{version}?api-version=...` → `{ value, id, attributes }`. Unauthenticated
 * requests get 401 with the challenge `WWW-Authenticate: Bearer authorization="<authority>/<tenant>",
 * resource="https://vault.azure.net"` the SDK authenticates from; unknown names get 404
 * `{ error: { code: "SecretNotFound", ... } }`.
 *
 * Tokens come from `identity`, a plain-HTTP App Service managed-identity endpoint
 * (`GET ?resource=...&api-version=2019-08-01` with `X-IDENTITY-HEADER`), which is what
 * ManagedIdentityCredential calls when `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` are set.
 */
export class AzureKeyVaultFake {
  readonly vault: FakeServer;
  readonly identity: FakeServer;
  readonly tenantId = '72f988bf-86f1-41af-91ab-2d7cd011db47';
  readonly identityHeader = randomUUID();
  private readonly tokens = new Map<string, string>();
  private readonly secrets = new Map<string, { value: string; version: string; created: number }>();
  readonly denied = new Set<string>();

  constructor(tls: { key: string; cert: string }) {
    this.vault = new FakeServer((r) => this.handleVault(r), tls);
    this.identity = new FakeServer((r) => this.handleIdentity(r));
  }

  async start(): Promise<this> {
    await this.vault.listen();
    await this.identity.listen();
    return this;
  }

  get vaultUrl(): string {
    return `https://127.0.0.1:${this.vault.port}`;
  }

  get identityEndpoint(): string {
    return `http://127.0.0.1:${this.identity.port}/msi/token`;
  }

  put(name: string, value: string): void {
    this.secrets.set(name, {
      value,
      version: randomUUID().replace(/-/g, ''),
      created: Math.floor(Date.now() / 1000),
    });
  }

  reads(name: string): number {
    return this.vault.requests.filter(
      (r) => r.path.replace(/\/$/, '') === `/secrets/${name}` && r.headers['authorization'],
    ).length;
  }

  tokenRequests(): number {
    return this.identity.requests.length;
  }

  async close(): Promise<void> {
    await this.vault.close();
    await this.identity.close();
  }

  private handleIdentity(r: FakeRequest): FakeResponse {
    if (r.headers['x-identity-header'] !== this.identityHeader) {
      return {
        status: 401,
        body: { statusCode: 401, message: 'Unauthorized: missing or wrong X-IDENTITY-HEADER' },
      };
    }
    const resource = r.query.get('resource');
    if (!resource || r.query.get('api-version') !== '2019-08-01')
      return {
        status: 400,
        body: { statusCode: 400, message: 'resource and api-version=2019-08-01 are required' },
      };
    const token = `eyJ0eXAiOiJKV1QifQ.${Buffer.from(randomUUID()).toString('base64url')}.fake`;
    this.tokens.set(token, resource.replace(/\/$/, ''));
    return {
      status: 200,
      body: {
        access_token: token,
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
        resource,
        token_type: 'Bearer',
        client_id: '5e29463d-71da-4fe0-8e69-999b57db23b0',
      },
    };
  }

  private handleVault(r: FakeRequest): FakeResponse {
    if (!r.query.get('api-version')) {
      return {
        status: 400,
        body: { error: { code: 'BadParameter', message: 'The api-version query parameter is required.' } },
      };
    }
    const auth = r.headers['authorization'];
    const token = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    if (!token || this.tokens.get(token) !== RESOURCE) {
      return {
        status: 401,
        headers: {
          'WWW-Authenticate': `Bearer authorization="https://login.microsoftonline.com/${this.tenantId}", resource="${RESOURCE}"`,
        },
        body: {
          error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' },
        },
      };
    }
    const m = /^\/secrets\/([0-9A-Za-z-]+)(?:\/([0-9a-f]*))?\/?$/.exec(r.path);
    if (!m || r.method !== 'GET')
      return {
        status: 404,
        body: { error: { code: 'NotFound', message: `no route ${r.method} ${r.path}` } },
      };
    const name = m[1]!;
    if (this.denied.has(name)) {
      return {
        status: 403,
        body: {
          error: {
            code: 'Forbidden',
            message: `The user, group or application does not have secrets get permission on key vault. Caller is not authorized.`,
            innererror: { code: 'AccessDenied' },
          },
        },
      };
    }
    const s = this.secrets.get(name);
    if (!s || (m[2] && m[2] !== s.version)) {
      return {
        status: 404,
        body: {
          error: {
            code: 'SecretNotFound',
            message: `A secret with (name/id) ${name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
          },
        },
      };
    }
    return {
      status: 200,
      body: {
        value: s.value,
        id: `${this.vaultUrl}/secrets/${name}/${s.version}`,
        attributes: {
          enabled: true,
          created: s.created,
          updated: s.created,
          recoveryLevel: 'Recoverable+Purgeable',
          recoverableDays: 90,
        },
        tags: {},
      },
    };
  }
}
