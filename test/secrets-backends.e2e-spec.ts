import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { GreenticError, SecretAccessError } from '../src/common/errors.js';
import { secretRedactor } from '../src/secrets/secret-redactor.js';
import { SECRETS_FACTORIES } from '../src/secrets/secrets.module.js';
import { SecretsService } from '../src/secrets/secrets.service.js';
import { SecretBackendError } from '../src/secrets/secrets.errors.js';
import { BundleRegistry } from '../src/tenancy/bundle-registry.service.js';
import { parseBundle } from '../src/tenancy/bundle.loader.js';
import type { TenantCtx } from '../src/core/tenant-ctx.js';
import { AwsSecretsFake } from './support/fakes/aws-secrets-fake.js';
import { AzureKeyVaultFake } from './support/fakes/azure-keyvault-fake.js';
import { GcpSecretsFake } from './support/fakes/gcp-secrets-fake.js';
import { selfSignedCert } from './support/fakes/tls.js';
import { VaultFake } from './support/fakes/vault-fake.js';

/**
 * Each secrets backend, through its real client, against a local server that answers as the
 * service's documented API does. Time is a fake clock on SecretsService, so TTLs are stepped
 * through without sleeping; the network calls are real.
 */
const TENANT: TenantCtx = { tenantId: 'acme', envId: 'prod' };
const ALLOWED = ['api_key', 'rotating', 'flaky', 'absent', 'background'];
const CACHE = { ttl_seconds: 60, refresh_after_seconds: 45, stale_seconds: 120, missing_ttl_seconds: 10 };

interface BackendCase {
  name: string;
  /** Stores a value under the logical name, as the backend's mapping names it. */
  put(logical: string, value: string): void;
  reads(logical: string): number;
  setDown(down: boolean): void;
  options(): Record<string, unknown>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function serviceFor(
  backend: string,
  options: Record<string, unknown>,
): { service: SecretsService; now: { t: number } } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-secrets-'));
  const bundle = parseBundle(
    stringify({
      tenants: {
        acme: {
          secrets: { backend, options: { ...options, cache: CACHE } },
          envs: { prod: { teams: { default: { channels: {} } } } },
        },
      },
    }),
    path.join(dir, 'bundle.yaml'),
  );
  const service = new SecretsService(new BundleRegistry(bundle), SECRETS_FACTORIES);
  const now = { t: 1_000_000 };
  service.clock = () => now.t;
  service.onModuleInit();
  return { service, now };
}

const vault = new VaultFake();
const aws = new AwsSecretsFake();
const gcp = new GcpSecretsFake();
let azure: AzureKeyVaultFake;
let tlsCertFile = '';
const keyDir = mkdtempSync(path.join(os.tmpdir(), 'greentic-gcp-key-'));

const cases: BackendCase[] = [
  {
    name: 'vault (token auth, namespace)',
    start: async () => {
      await vault.start();
      vault.addToken('hvs.root-token-for-tests');
    },
    stop: () => vault.close(),
    put: (n, v) => vault.put('kv', `acme/prod/${n}`, { value: v, rotated_by: 'ops' }, 'team-a'),
    reads: (n) => vault.reads('kv', `acme/prod/${n}`),
    setDown: (d) => vault.server.setDown(d),
    options: () => {
      process.env['GREENTIC_TEST_VAULT_TOKEN'] = 'hvs.root-token-for-tests';
      return {
        address: vault.address,
        mount: 'kv',
        namespace: 'team-a',
        auth: { method: 'token', token_env: 'GREENTIC_TEST_VAULT_TOKEN' },
      };
    },
  },
  {
    name: 'aws secrets manager',
    start: async () => {
      await aws.start();
      aws.addCredentials('AKIDEXAMPLERUNNER01', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
      process.env['AWS_ACCESS_KEY_ID'] = 'AKIDEXAMPLERUNNER01';
      process.env['AWS_SECRET_ACCESS_KEY'] = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    },
    stop: () => aws.close(),
    put: (n, v) => aws.put(`acme/prod/${n}`, v),
    reads: (n) => aws.reads(`acme/prod/${n}`),
    setDown: (d) => aws.server.setDown(d),
    options: () => ({ region: aws.region, endpoint: aws.endpoint, max_attempts: 1 }),
  },
  {
    name: 'gcp secret manager (REST transport)',
    start: async () => {
      await gcp.start();
    },
    stop: () => gcp.close(),
    put: (n, v) => gcp.put(`acme--prod--${n}`, v),
    reads: (n) => gcp.reads(`acme--prod--${n}`),
    setDown: (d) => gcp.server.setDown(d),
    options: () => ({
      project: gcp.project,
      endpoint: gcp.endpoint,
      protocol: 'http',
      key_file: gcp.writeKeyFile(path.join(keyDir, 'sa.json')),
      max_retries: 0,
    }),
  },
  {
    name: 'azure key vault (managed identity)',
    start: async () => {
      const tls = selfSignedCert();
      tlsCertFile = tls.certFile;
      azure = await new AzureKeyVaultFake(tls).start();
      // What App Service sets for a managed identity; ManagedIdentityCredential reads them.
      process.env['IDENTITY_ENDPOINT'] = azure.identityEndpoint;
      process.env['IDENTITY_HEADER'] = azure.identityHeader;
    },
    stop: () => azure.close(),
    put: (n, v) => azure.put(`acme--prod--${n.replace(/_/g, '-')}`, v),
    reads: (n) => azure.reads(`acme--prod--${n.replace(/_/g, '-')}`),
    setDown: (d) => azure.vault.setDown(d),
    options: () => ({
      vault_url: azure.vaultUrl,
      credential: 'managed_identity',
      disable_challenge_resource_verification: true,
      ca_file: tlsCertFile,
      max_retries: 0,
    }),
  },
];

describe.each(cases)('secrets backend: $name', (c) => {
  let service: SecretsService;
  let now: { t: number };

  beforeAll(async () => {
    await c.start();
    ({ service, now } = serviceFor(c.name.split(' ')[0]!, c.options()));
  });
  afterAll(async () => {
    await service.onApplicationShutdown();
    await c.stop();
  });

  it('reads a secret through the official client, then answers from cache', async () => {
    c.put('api_key', 'sk-live-4f9a2c7e51');
    await expect(service.require(TENANT, 'api_key', ALLOWED)).resolves.toBe('sk-live-4f9a2c7e51');
    expect(c.reads('api_key')).toBe(1);
    now.t += 30_000;
    await expect(service.get(TENANT, 'api_key', ALLOWED)).resolves.toBe('sk-live-4f9a2c7e51');
    expect(c.reads('api_key')).toBe(1);
    expect(service.backendFor(TENANT).stats().hits).toBeGreaterThanOrEqual(1);
    expect(secretRedactor.contains('token=sk-live-4f9a2c7e51')).toBe(true);
  });

  it('refreshes in the background once a value ages, and fetches again after the TTL', async () => {
    c.put('background', 'v1-background-0001');
    await expect(service.get(TENANT, 'background', ALLOWED)).resolves.toBe('v1-background-0001');
    c.put('background', 'v2-background-0002');
    now.t += 50_000; // past refresh_after (45 s), inside the TTL (60 s)
    await expect(service.get(TENANT, 'background', ALLOWED)).resolves.toBe('v1-background-0001');
    await vi.waitFor(() => expect(c.reads('background')).toBe(2));
    await vi.waitFor(async () =>
      expect(await service.get(TENANT, 'background', ALLOWED)).toBe('v2-background-0002'),
    );
    expect(c.reads('background')).toBe(2);

    c.put('rotating', 'rot-value-aaaa');
    await expect(service.get(TENANT, 'rotating', ALLOWED)).resolves.toBe('rot-value-aaaa');
    c.put('rotating', 'rot-value-bbbb');
    now.t += 61_000; // past the TTL
    await expect(service.get(TENANT, 'rotating', ALLOWED)).resolves.toBe('rot-value-bbbb');
    expect(c.reads('rotating')).toBe(2);
  });

  it('a missing secret is a clear error naming backend and name', async () => {
    const err = await service.require(TENANT, 'absent', ALLOWED).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretAccessError);
    expect((err as SecretAccessError).code).toBe('secret_missing');
    const kind = service.backendFor(TENANT).kind;
    expect((err as Error).message).toContain(`'absent'`);
    expect((err as Error).message).toContain(`backend '${kind}'`);
    // Remembered briefly, so a flow asking in a loop does not hammer the store.
    const before = c.reads('absent');
    await expect(service.get(TENANT, 'absent', ALLOWED)).resolves.toBeUndefined();
    expect(c.reads('absent')).toBe(before);
  });

  it('refuses a name outside the binding allow-list without asking the backend', async () => {
    c.put('not_allowed', 'never-to-be-read-123');
    const err = await service.get(TENANT, 'not_allowed', ALLOWED).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretAccessError);
    expect((err as SecretAccessError).code).toBe('secret_denied');
    expect(c.reads('not_allowed')).toBe(0);
  });

  it('serves the stale value while the backend is down, then fails clearly after the window', async () => {
    c.put('flaky', 'flaky-secret-value-77');
    await expect(service.get(TENANT, 'flaky', ALLOWED)).resolves.toBe('flaky-secret-value-77');
    c.setDown(true);
    try {
      now.t += 61_000; // expired, inside ttl + stale (180 s)
      await expect(service.get(TENANT, 'flaky', ALLOWED)).resolves.toBe('flaky-secret-value-77');
      expect(service.backendFor(TENANT).stats().staleServed).toBeGreaterThanOrEqual(1);
      now.t += 120_000; // 181 s after the read: past the window
      const err = await service.get(TENANT, 'flaky', ALLOWED).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SecretBackendError);
      expect(err).toBeInstanceOf(GreenticError);
      const kind = service.backendFor(TENANT).kind;
      expect((err as Error).message).toContain(`secrets backend '${kind}'`);
      expect((err as Error).message).toContain('flaky');
      expect((err as Error).message).not.toContain('flaky-secret-value-77');
      expect(JSON.stringify((err as GreenticError).details)).not.toContain('flaky-secret-value-77');
    } finally {
      c.setDown(false);
    }
  });
});

describe('secrets backends: auth and refusals', () => {
  it('vault AppRole logs in once, and again when Vault revokes the token', async () => {
    const v = await new VaultFake().start();
    try {
      v.addAppRole('approle', 'role-1234', 'secret-id-5678', 3600);
      process.env['GREENTIC_TEST_VAULT_SECRET_ID'] = 'secret-id-5678';
      v.put('secret', 'acme/prod/api_key', { value: 'approle-read-value' });
      v.put('secret', 'acme/prod/rotating', { value: 'approle-second-value' });
      const { service } = serviceFor('vault', {
        address: v.address,
        auth: { method: 'approle', role_id: 'role-1234', secret_id_env: 'GREENTIC_TEST_VAULT_SECRET_ID' },
      });
      await expect(service.get(TENANT, 'api_key', ALLOWED)).resolves.toBe('approle-read-value');
      expect(v.logins).toBe(1);
      v.revokeAll();
      await expect(service.get(TENANT, 'rotating', ALLOWED)).resolves.toBe('approle-second-value');
      expect(v.logins).toBe(2);
      await service.onApplicationShutdown();
    } finally {
      await v.close();
    }
  });

  it('a vault token the server does not know is a backend error, not a missing secret', async () => {
    const v = await new VaultFake().start();
    try {
      v.put('secret', 'acme/prod/api_key', { value: 'unreachable-value' });
      process.env['GREENTIC_TEST_BAD_TOKEN'] = 'hvs.unknown';
      const { service } = serviceFor('vault', {
        address: v.address,
        auth: { token_env: 'GREENTIC_TEST_BAD_TOKEN' },
      });
      const err = await service.get(TENANT, 'api_key', ALLOWED).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SecretBackendError);
      expect((err as Error).message).toMatch(/HTTP 403: permission denied/);
      await service.onApplicationShutdown();
    } finally {
      await v.close();
    }
  });

  it('aws: a wrong secret key fails signature verification with a clear backend error', async () => {
    const a = await new AwsSecretsFake().start();
    const saved = { id: process.env['AWS_ACCESS_KEY_ID'], key: process.env['AWS_SECRET_ACCESS_KEY'] };
    try {
      a.addCredentials('AKIDEXAMPLERUNNER02', 'the-right-secret-key');
      a.put('acme/prod/api_key', 'signed-value');
      process.env['AWS_ACCESS_KEY_ID'] = 'AKIDEXAMPLERUNNER02';
      process.env['AWS_SECRET_ACCESS_KEY'] = 'a-wrong-secret-key';
      const { service } = serviceFor('aws', { region: a.region, endpoint: a.endpoint, max_attempts: 1 });
      const err = await service.get(TENANT, 'api_key', ALLOWED).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SecretBackendError);
      expect((err as Error).message).toContain('InvalidSignatureException');
      expect((err as Error).message).not.toContain('a-wrong-secret-key');
      a.denied.add('acme/prod/rotating');
      process.env['AWS_SECRET_ACCESS_KEY'] = 'the-right-secret-key';
      const { service: ok } = serviceFor('aws', { region: a.region, endpoint: a.endpoint, max_attempts: 1 });
      await expect(ok.get(TENANT, 'api_key', ALLOWED)).resolves.toBe('signed-value');
      await expect(ok.get(TENANT, 'rotating', ALLOWED)).rejects.toThrow(/AccessDeniedException/);
      await service.onApplicationShutdown();
      await ok.onApplicationShutdown();
    } finally {
      process.env['AWS_ACCESS_KEY_ID'] = saved.id;
      process.env['AWS_SECRET_ACCESS_KEY'] = saved.key;
      await a.close();
    }
  });

  it("tenants read under their own names: one tenant cannot reach another's secret", async () => {
    const v = await new VaultFake().start();
    try {
      v.addToken('hvs.shared');
      process.env['GREENTIC_TEST_VAULT_SHARED'] = 'hvs.shared';
      v.put('secret', 'acme/prod/api_key', { value: 'acme-only-value-1' });
      const { service } = serviceFor('vault', {
        address: v.address,
        auth: { token_env: 'GREENTIC_TEST_VAULT_SHARED' },
      });
      await expect(service.get(TENANT, 'api_key', ALLOWED)).resolves.toBe('acme-only-value-1');
      await expect(
        service.get({ tenantId: 'acme', envId: 'staging' }, 'api_key', ALLOWED),
      ).resolves.toBeUndefined();
      expect(v.server.requests.map((r) => r.path)).toContain('/v1/secret/data/acme/staging/api_key');
      await service.onApplicationShutdown();
    } finally {
      await v.close();
    }
  });

  it('bad bindings stop start-up with the key named', () => {
    expect(() => serviceFor('vault', { auth: { token_env: 'X' } })).toThrow(
      /secrets backend 'vault': option 'address' is required/,
    );
    expect(() =>
      serviceFor('vault', { address: 'http://127.0.0.1:1', auth: { token: 'hvs.inline' } }),
    ).toThrow(/option 'token' must not hold a credential in the bundle/);
    expect(() => serviceFor('azure', { vault_url: 'http://127.0.0.1:1' })).toThrow(
      /'vault_url' must be https/,
    );
    expect(() => serviceFor('gcp', { project: 'p', transport: 'smoke' })).toThrow(
      /option 'transport' must be 'rest' or 'grpc'/,
    );
    expect(() => serviceFor('env', { name_template: '{tenant}/{nmae}' })).toThrow(
      /unknown placeholder '\{nmae\}'/,
    );
    expect(() => serviceFor('nope', {})).toThrow(/secrets backend 'nope' is not available/);
  });
});
