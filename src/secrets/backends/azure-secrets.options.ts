import { readFileSync } from 'node:fs';
import type { BackendOptions } from '../backend-options.js';
import { describeCause } from '../secrets.errors.js';

export type AzureCredentialKind = 'default' | 'managed_identity' | 'workload_identity' | 'client_secret';

export interface AzureCredentialSpec {
  kind: AzureCredentialKind;
  clientId?: string;
  tenantId?: string;
  /** Read at bundle load, as the credential it becomes was before (kind `client_secret`). */
  clientSecret?: string;
}

export interface AzureSecretsOptions {
  /** `https://<vault>.vault.azure.net` */
  vaultUrl: string;
  /** Which `@azure/identity` credential to build, and its ids; made when the client loads. */
  credential: AzureCredentialSpec;
  /** Needed when the vault is reached under another host name than `*.vault.azure.net`. */
  disableChallengeResourceVerification: boolean;
  /** Extra CA (PEM) to trust: private endpoints behind an inspecting proxy, the tests' fake. */
  ca?: string;
  maxRetries: number;
  timeoutMs: number;
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
  let credential: AzureCredentialSpec;
  switch (kind) {
    case 'default':
    case 'managed_identity':
    case 'workload_identity':
      credential = { kind, ...(clientId ? { clientId } : {}), ...(tenantId ? { tenantId } : {}) };
      break;
    case 'client_secret': {
      if (!clientId) o.fail('client_id', "is required with credential 'client_secret'");
      if (!tenantId) o.fail('tenant_id', "is required with credential 'client_secret'");
      const secret = o.credential('client_secret', 'AZURE_CLIENT_SECRET');
      credential = { kind, clientId, tenantId, clientSecret: secret() };
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
    disableChallengeResourceVerification: o.boolean('disable_challenge_resource_verification', false),
    ...(ca ? { ca } : {}),
    maxRetries: o.number('max_retries', 2, 0),
    timeoutMs: o.number('timeout_ms', 5_000, 1),
  };
}
