import { createPublicKey, generateKeyPairSync, randomUUID, verify, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { FakeServer, type FakeRequest, type FakeResponse } from './fake-server.js';

const SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

/**
 * GCP Secret Manager's REST API as documented:
 * `GET /v1/projects/{project}/secrets/{secret}/versions/{version}:access` →
 * `{ name, payload: { data: <base64>, dataCrc32c } }`, errors as
 * `{ error: { code, message, status } }` (404 NOT_FOUND, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED).
 * Callers authenticate with `Authorization: Bearer`: either a self-signed service-account JWT
 * (RS256, `iss` = the account, `scope` or `aud` naming the API — what the client library sends for
 * a key file) checked against the account's public key, or an access token from `POST /token`
 * (the JWT-bearer grant at the key file's `token_uri`).
 */
export class GcpSecretsFake {
  readonly server: FakeServer;
  readonly project = 'greentic-test';
  readonly clientEmail = `runner@greentic-test.iam.gserviceaccount.com`;
  private readonly publicKey: KeyObject;
  private readonly privateKeyPem: string;
  private readonly secrets = new Map<string, { value: string; versions: number }>();
  private readonly accessTokens = new Set<string>();
  readonly denied = new Set<string>();

  constructor() {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.publicKey = createPublicKey(publicKey.export({ type: 'spki', format: 'pem' }));
    this.privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.server = new FakeServer((r) => this.handle(r));
  }

  async start(): Promise<this> {
    await this.server.listen();
    return this;
  }

  get endpoint(): string {
    return `127.0.0.1:${this.server.port}`;
  }

  /** Writes a service-account key file (the JSON `gcloud iam service-accounts keys create` makes). */
  writeKeyFile(file: string): string {
    writeFileSync(
      file,
      JSON.stringify({
        type: 'service_account',
        project_id: this.project,
        private_key_id: randomUUID().replace(/-/g, ''),
        private_key: this.privateKeyPem,
        client_email: this.clientEmail,
        client_id: '100000000000000000001',
        auth_uri: 'https://accounts.google.com/o/oauth2/auth',
        token_uri: `http://127.0.0.1:${this.server.port}/token`,
        universe_domain: 'googleapis.com',
      }),
    );
    return file;
  }

  put(secretId: string, value: string): void {
    const cur = this.secrets.get(secretId);
    this.secrets.set(secretId, { value, versions: (cur?.versions ?? 0) + 1 });
  }

  reads(secretId: string): number {
    return this.server.count(new RegExp(`^/v1/projects/[^/]+/secrets/${secretId}/versions/[^/]+:access$`));
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private handle(r: FakeRequest): FakeResponse {
    if (r.method === 'POST' && r.path === '/token') return this.token(r);
    const m = /^\/v1\/projects\/([^/]+)\/secrets\/([^/]+)\/versions\/([^/:]+):access$/.exec(r.path);
    if (!m) return gError(404, 'NOT_FOUND', `no route ${r.method} ${r.path}`);
    if (r.method !== 'GET') return gError(405, 'METHOD_NOT_ALLOWED', 'use GET');
    const authError = this.authenticate(r);
    if (authError) return authError;
    const [, project, secretId, version] = m as unknown as string[];
    const resource = `projects/${project}/secrets/${secretId}`;
    if (project !== this.project)
      return gError(
        403,
        'PERMISSION_DENIED',
        `Permission 'secretmanager.versions.access' denied for resource '${resource}/versions/${version}'`,
      );
    if (this.denied.has(secretId!))
      return gError(
        403,
        'PERMISSION_DENIED',
        `Permission 'secretmanager.versions.access' denied for resource '${resource}/versions/${version}' (or it may not exist).`,
      );
    const s = this.secrets.get(secretId!);
    if (!s) return gError(404, 'NOT_FOUND', `Secret [${resource}] not found or has no versions.`);
    const n = version === 'latest' ? s.versions : Number(version);
    const data = Buffer.from(s.value, 'utf8');
    return {
      status: 200,
      body: {
        name: `projects/123456789/secrets/${secretId}/versions/${n}`,
        payload: { data: data.toString('base64'), dataCrc32c: String(crc32c(data)) },
      },
    };
  }

  private authenticate(r: FakeRequest): FakeResponse | null {
    const h = r.headers['authorization'];
    const bearer = typeof h === 'string' && h.startsWith('Bearer ') ? h.slice(7) : undefined;
    const unauthenticated = gError(
      401,
      'UNAUTHENTICATED',
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
    );
    if (!bearer) return unauthenticated;
    if (this.accessTokens.has(bearer)) return null;
    const claims = this.verifyJwt(bearer);
    if (!claims) return unauthenticated;
    const scopes = typeof claims['scope'] === 'string' ? claims['scope'].split(' ') : [];
    const aud = claims['aud'];
    if (!scopes.includes(SCOPE) && !(typeof aud === 'string' && aud.includes('secretmanager')))
      return gError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.');
    return null;
  }

  private token(r: FakeRequest): FakeResponse {
    const form = new URLSearchParams(r.body.toString('utf8'));
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer')
      return { status: 400, body: { error: 'unsupported_grant_type' } };
    if (!this.verifyJwt(form.get('assertion') ?? ''))
      return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } };
    const token = `ya29.${randomUUID().replace(/-/g, '')}`;
    this.accessTokens.add(token);
    return { status: 200, body: { access_token: token, expires_in: 3599, token_type: 'Bearer' } };
  }

  private verifyJwt(jwt: string): Record<string, unknown> | null {
    const parts = jwt.split('.');
    if (parts.length !== 3) return null;
    const [h, p, sig] = parts as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string };
    if (header.alg !== 'RS256') return null;
    if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), this.publicKey, Buffer.from(sig, 'base64url')))
      return null;
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (claims['iss'] !== this.clientEmail) return null;
    if (typeof claims['exp'] !== 'number' || claims['exp'] * 1000 < Date.now()) return null;
    return claims;
  }
}

function gError(code: number, status: string, message: string): FakeResponse {
  return { status: code, body: { error: { code, message, status } } };
}

/** CRC32C (Castagnoli), as Secret Manager reports it in `dataCrc32c`. */
function crc32c(buf: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of buf) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
