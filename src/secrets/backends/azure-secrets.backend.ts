import { readFileSync } from 'node:fs';
import {
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
  type TokenCredential,
} from '@azure/identity';
import { SecretClient, type SecretClientOptions } from '@azure/keyvault-secrets';
import { BackendOptions } from '../backend-options.js';
import type { SecretsBackend, SecretsBackendFactory } from '../secrets-backend.js';
import { describeCause, SecretBackendError } from '../secrets.errors.js';

export type AzureCredentialKind = 'default' | 'managed_identity' | 'workload_identity' | 'client_secret';

export interface AzureSecretsOptions {
  /** `https://<vault>.vault.azure.net` */
  vaultUrl: string;
  credential: TokenCredential;
  credentialKind: AzureCredentialKind;
  /** Needed when the vault is reached under another host name than `*.vault.azure.net`. */
  disableChallengeResourceVerification: boolean;
  /** Extra CA (PEM) to trust: private endpoints behind an inspecting proxy, the tests' fake. */
  ca?: string;
  maxRetries: number;
  timeoutMs: number;
}

/**
 * Azure Key Vault through the official `@azure/keyvault-secrets` SecretClient with an
 * `@azure/identity` credential (DefaultAzureCredential unless the bundle picks one). Key Vault
 * names allow only letters, digits and `-`, so other characters of the mapped name become `-`.
 */
export class AzureSecretsBackend implements SecretsBackend {
  readonly kind = 'azure';
  private readonly client: SecretClient;

  constructor(private readonly opts: AzureSecretsOptions) {
    const clientOptions: SecretClientOptions = {
      disableChallengeResourceVerification: opts.disableChallengeResourceVerification,
      retryOptions: { maxRetries: opts.maxRetries },
      ...(opts.ca ? { tlsOptions: { ca: opts.ca } } : {}),
    };
    this.client = new SecretClient(opts.vaultUrl, opts.credential, clientOptions);
  }

  async get(name: string): Promise<string | undefined> {
    const vaultName = azureSecretName(name);
    try {
      const s = await this.client.getSecret(vaultName, {
        abortSignal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      return s.value;
    } catch (e) {
      const status = (e as { statusCode?: number }).statusCode;
      if (status === 404) return undefined;
      throw new SecretBackendError(this.kind, vaultName, describeCause(e), {
        ...(status ? { httpStatus: status } : {}),
        ...((e as { code?: string }).code ? { errorCode: (e as { code?: string }).code } : {}),
      });
    }
  }

  async health(): Promise<{ up: boolean; details: Record<string, unknown> }> {
    return {
      up: true,
      details: { kind: this.kind, vaultUrl: this.opts.vaultUrl, credential: this.opts.credentialKind },
    };
  }
}

export function azureSecretName(name: string): string {
  return name.replace(/[^0-9A-Za-z-]/g, '-');
}

export function azureOptionsFrom(o: BackendOptions): AzureSecretsOptions {
  const vaultUrl = o.requireString('vault_url', 'AZURE_KEYVAULT_URL');
  let url: URL;
  try {
    url = new URL(vaultUrl);
  } catch {
    o.fail('vault_url', `must be a URL, got '${vaultUrl}'`);
  }
  if (url.protocol !== 'https:')
    o.fail('vault_url', 'must be https (Key Vault clients send bearer tokens over TLS only)');
  const kind = (o.string('credential') ?? 'default') as AzureCredentialKind;
  const clientId = o.string('client_id');
  const tenantId = o.string('tenant_id');
  let credential: TokenCredential;
  switch (kind) {
    case 'default':
      credential = new DefaultAzureCredential(clientId ? { managedIdentityClientId: clientId } : {});
      break;
    case 'managed_identity':
      credential = clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
      break;
    case 'workload_identity':
      credential = new WorkloadIdentityCredential({
        ...(clientId ? { clientId } : {}),
        ...(tenantId ? { tenantId } : {}),
      });
      break;
    case 'client_secret': {
      if (!clientId) o.fail('client_id', "is required with credential 'client_secret'");
      if (!tenantId) o.fail('tenant_id', "is required with credential 'client_secret'");
      const secret = o.credential('client_secret', 'AZURE_CLIENT_SECRET');
      credential = new ClientSecretCredential(tenantId, clientId, secret());
      break;
    }
    default:
      o.fail(
        'credential',
        `must be one of default, managed_identity, workload_identity, client_secret; got '${String(kind)}'`,
      );
  }
  const caFile = o.path('ca_file');
  let ca: string | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (e) {
      o.fail(
        'ca_file',
        `cannot be read (${(e as NodeJS.ErrnoException).code ?? describeCause(e)}): ${caFile}`,
      );
    }
  }
  return {
    vaultUrl,
    credential,
    credentialKind: kind,
    disableChallengeResourceVerification: o.boolean('disable_challenge_resource_verification', false),
    ...(ca ? { ca } : {}),
    maxRetries: o.number('max_retries', 2, 0),
    timeoutMs: o.number('timeout_ms', 5_000, 1),
  };
}

export const azureSecretsFactory: SecretsBackendFactory = {
  kind: 'azure',
  defaultNameTemplate: '{tenant}--{env}--{name}',
  create: (tenant, options, bundleDir) =>
    new AzureSecretsBackend(azureOptionsFrom(new BackendOptions('azure', tenant, options, bundleDir))),
};
