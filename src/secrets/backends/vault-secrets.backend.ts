import { Logger } from '@nestjs/common';
import { BackendOptions } from '../backend-options.js';
import type { SecretsBackend, SecretsBackendFactory } from '../secrets-backend.js';
import { describeCause, SecretBackendError } from '../secrets.errors.js';

export type VaultAuth =
  | { method: 'token'; token: () => string }
  | { method: 'approle'; mount: string; roleId: () => string; secretId: () => string };

export interface VaultOptions {
  /** `https://vault.example.com:8200` */
  address: string;
  /** Vault Enterprise / HCP namespace, sent as `X-Vault-Namespace`. */
  namespace?: string;
  /** KV v2 mount point. */
  mount: string;
  /** Key inside the KV v2 secret's data that holds the value. */
  field: string;
  auth: VaultAuth;
  timeoutMs: number;
}

interface VaultLogin {
  token: string;
  /** Epoch ms after which we log in again before a request (renewal margin included). */
  renewAt: number;
}

/**
 * HashiCorp Vault, KV secrets engine v2, over Vault's documented HTTP API (`GET
 * /v1/{mount}/data/{path}`, `X-Vault-Token`, `X-Vault-Namespace`). HashiCorp publishes no Node.js
 * client; the community ones wrap the same three calls, so `fetch` is used directly.
 * AppRole logs in with `POST /v1/auth/{mount}/login` and logs in again when the lease runs out or
 * Vault answers 403 (token revoked early).
 */
export class VaultSecretsBackend implements SecretsBackend {
  readonly kind = 'vault';
  private readonly logger = new Logger(VaultSecretsBackend.name);
  private login?: Promise<VaultLogin>;

  constructor(private readonly opts: VaultOptions) {}

  async get(name: string): Promise<string | undefined> {
    const res = await this.authorised(name, (token) =>
      this.request('GET', `/v1/${this.opts.mount}/data/${encodePath(name)}`, token),
    );
    if (res.status === 404) return undefined;
    if (!res.ok) throw new SecretBackendError(this.kind, name, await vaultErrors(res));
    const body = (await res.json()) as { data?: { data?: Record<string, unknown> | null } };
    const data = body.data?.data;
    if (!data) return undefined;
    const v = data[this.opts.field];
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' ? v : JSON.stringify(v);
  }

  async health(): Promise<{ up: boolean; details: Record<string, unknown> }> {
    try {
      // sys/health answers 200 only on an initialised, unsealed, active node.
      const res = await this.request('GET', '/v1/sys/health');
      return { up: res.ok, details: { kind: this.kind, address: this.opts.address, status: res.status } };
    } catch (e) {
      return { up: false, details: { kind: this.kind, address: this.opts.address, error: describeCause(e) } };
    }
  }

  private async authorised(name: string, call: (token: string) => Promise<Response>): Promise<Response> {
    try {
      let token = await this.token();
      let res = await call(token);
      if (res.status === 403 && this.opts.auth.method === 'approle') {
        // A revoked or expired AppRole token: one fresh login, then the answer stands.
        this.login = undefined;
        token = await this.token();
        res = await call(token);
      }
      return res;
    } catch (e) {
      if (e instanceof SecretBackendError) throw e;
      throw new SecretBackendError(this.kind, name, describeCause(e));
    }
  }

  private async token(): Promise<string> {
    const auth = this.opts.auth;
    if (auth.method === 'token') return auth.token();
    const now = Date.now();
    if (this.login) {
      const current = await this.login.catch(() => undefined);
      if (current && current.renewAt > now) return current.token;
    }
    this.login = this.appRoleLogin(auth);
    const fresh = await this.login.catch((e: unknown) => {
      this.login = undefined;
      throw e;
    });
    return fresh.token;
  }

  private async appRoleLogin(auth: Extract<VaultAuth, { method: 'approle' }>): Promise<VaultLogin> {
    const res = await this.request('POST', `/v1/auth/${auth.mount}/login`, undefined, {
      role_id: auth.roleId(),
      secret_id: auth.secretId(),
    });
    if (!res.ok)
      throw new SecretBackendError(
        this.kind,
        `auth/${auth.mount}/login`,
        `AppRole login failed: ${await vaultErrors(res)}`,
      );
    const body = (await res.json()) as { auth?: { client_token?: string; lease_duration?: number } };
    const token = body.auth?.client_token;
    if (!token)
      throw new SecretBackendError(
        this.kind,
        `auth/${auth.mount}/login`,
        'AppRole login answered without auth.client_token',
      );
    const lease = (body.auth?.lease_duration ?? 0) * 1000;
    this.logger.log(
      { backend: this.kind, mount: auth.mount, leaseSeconds: lease / 1000 },
      'vault AppRole login',
    );
    // Renew at 80% of the lease; a zero lease (root-like token) never expires.
    return { token, renewAt: lease > 0 ? Date.now() + lease * 0.8 : Number.POSITIVE_INFINITY };
  }

  private request(method: string, path: string, token?: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers['X-Vault-Token'] = token;
    if (this.opts.namespace) headers['X-Vault-Namespace'] = this.opts.namespace;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(new URL(path, this.opts.address), {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(this.opts.timeoutMs),
    });
  }
}

function encodePath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/** Vault answers `{"errors": ["..."]}`; the messages never echo secret data. */
async function vaultErrors(res: Response): Promise<string> {
  let detail = '';
  try {
    const body = (await res.json()) as { errors?: unknown };
    if (Array.isArray(body.errors) && body.errors.length > 0)
      detail = `: ${body.errors.map(String).join('; ')}`;
  } catch {
    // not JSON: the status says enough
  }
  return `HTTP ${res.status}${detail}`;
}

export function vaultOptionsFrom(o: BackendOptions): VaultOptions {
  const address = o.requireString('address', 'VAULT_ADDR');
  try {
    new URL(address);
  } catch {
    o.fail('address', `must be a URL, got '${address}'`);
  }
  const auth = o.object('auth');
  const method = auth.string('method') ?? 'token';
  let vaultAuth: VaultAuth;
  if (method === 'token') {
    vaultAuth = { method, token: auth.credential('token', 'VAULT_TOKEN') };
  } else if (method === 'approle') {
    const roleId = auth.string('role_id');
    vaultAuth = {
      method,
      mount: auth.string('mount') ?? 'approle',
      roleId: roleId ? () => roleId : auth.credential('role_id'),
      secretId: auth.credential('secret_id'),
    };
  } else {
    return auth.fail('method', `must be 'token' or 'approle', got '${method}'`);
  }
  const namespace = o.string('namespace') ?? process.env['VAULT_NAMESPACE'];
  return {
    address,
    ...(namespace ? { namespace } : {}),
    mount: (o.string('mount') ?? 'secret').replace(/^\/+|\/+$/g, ''),
    field: o.string('field') ?? 'value',
    auth: vaultAuth,
    timeoutMs: o.number('timeout_ms', 5_000, 1),
  };
}

export const vaultSecretsFactory: SecretsBackendFactory = {
  kind: 'vault',
  create: (tenant, options, bundleDir) =>
    new VaultSecretsBackend(vaultOptionsFrom(new BackendOptions('vault', tenant, options, bundleDir))),
};
