import { randomUUID } from 'node:crypto';
import { FakeServer, type FakeRequest, type FakeResponse } from './fake-server.js';

/**
 * HashiCorp Vault as its HTTP API documents it, for the parts the runner uses:
 * - `GET /v1/sys/health`
 * - `POST /v1/auth/{mount}/login` (AppRole: `{role_id, secret_id}` → `auth.client_token`)
 * - `GET /v1/{mount}/data/{path}` (KV v2: `data.data` + `data.metadata`), `X-Vault-Token`,
 *   `X-Vault-Namespace` (secrets live per namespace, as in Vault Enterprise)
 * Errors are `{"errors": [...]}`: 403 "permission denied" for a missing or unknown token, 404
 * with an empty list for a path that holds nothing.
 */
export class VaultFake {
  readonly server: FakeServer;
  /** `namespace|mount/path` → versions of the KV data. */
  private readonly kv = new Map<string, { data: Record<string, unknown>; created: string }[]>();
  private readonly tokens = new Set<string>();
  private readonly approles = new Map<string, { roleId: string; secretId: string; leaseSeconds: number }>();
  logins = 0;

  constructor() {
    this.server = new FakeServer((r) => this.handle(r));
  }

  async start(): Promise<this> {
    await this.server.listen();
    return this;
  }

  get address(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  addToken(token: string): void {
    this.tokens.add(token);
  }

  /** Revokes every token issued so far (root tokens added with addToken included). */
  revokeAll(): void {
    this.tokens.clear();
  }

  addAppRole(mount: string, roleId: string, secretId: string, leaseSeconds = 3600): void {
    this.approles.set(mount, { roleId, secretId, leaseSeconds });
  }

  /** Writes a new version, as `vault kv put -mount=<mount> <path> k=v` would. */
  put(mount: string, path: string, data: Record<string, unknown>, namespace = ''): void {
    const key = `${namespace}|${mount}/${path}`;
    const versions = this.kv.get(key) ?? [];
    versions.push({ data, created: new Date().toISOString() });
    this.kv.set(key, versions);
  }

  /** Reads of `mount/data/path`, for cache assertions. */
  reads(mount: string, path: string): number {
    return this.server.requests.filter((r) => r.method === 'GET' && r.path === `/v1/${mount}/data/${path}`)
      .length;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private handle(r: FakeRequest): FakeResponse {
    const ns = String(r.headers['x-vault-namespace'] ?? '').replace(/^\/+|\/+$/g, '');
    if (r.method === 'GET' && r.path === '/v1/sys/health') {
      return {
        status: 200,
        body: {
          initialized: true,
          sealed: false,
          standby: false,
          performance_standby: false,
          version: '1.17.0',
          cluster_name: 'fake',
        },
      };
    }
    const login = /^\/v1\/auth\/(.+)\/login$/.exec(r.path);
    if (r.method === 'POST' && login) {
      const role = this.approles.get(login[1]!);
      let body: { role_id?: string; secret_id?: string } = {};
      try {
        body = JSON.parse(r.body.toString('utf8')) as typeof body;
      } catch {
        return errors(400, ['failed to parse JSON input']);
      }
      if (!role || body.role_id !== role.roleId || body.secret_id !== role.secretId)
        return errors(400, ['invalid role or secret ID']);
      this.logins++;
      const token = `hvs.${randomUUID().replace(/-/g, '')}`;
      this.tokens.add(token);
      return {
        status: 200,
        body: {
          request_id: randomUUID(),
          lease_id: '',
          renewable: false,
          lease_duration: 0,
          data: null,
          wrap_info: null,
          warnings: null,
          auth: {
            client_token: token,
            accessor: randomUUID(),
            policies: ['default', 'greentic'],
            token_policies: ['default', 'greentic'],
            metadata: { role_name: 'greentic' },
            lease_duration: role.leaseSeconds,
            renewable: true,
            entity_id: randomUUID(),
            token_type: 'service',
            orphan: true,
          },
        },
      };
    }
    const read = /^\/v1\/([^/]+)\/data\/(.+)$/.exec(r.path);
    if (r.method === 'GET' && read) {
      const token = r.headers['x-vault-token'];
      if (typeof token !== 'string' || !this.tokens.has(token)) return errors(403, ['permission denied']);
      const versions = this.kv.get(`${ns}|${read[1]}/${read[2]}`);
      const latest = versions?.[versions.length - 1];
      if (!latest) return errors(404, []);
      return {
        status: 200,
        body: {
          request_id: randomUUID(),
          lease_id: '',
          renewable: false,
          lease_duration: 0,
          data: {
            data: latest.data,
            metadata: {
              created_time: latest.created,
              custom_metadata: null,
              deletion_time: '',
              destroyed: false,
              version: versions!.length,
            },
          },
          wrap_info: null,
          warnings: null,
          auth: null,
        },
      };
    }
    return errors(404, []);
  }
}

function errors(status: number, list: string[]): FakeResponse {
  return { status, body: { errors: list } };
}
