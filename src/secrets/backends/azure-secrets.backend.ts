import {
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
  type TokenCredential,
} from '@azure/identity';
import { SecretClient, type SecretClientOptions } from '@azure/keyvault-secrets';
import type { SecretsBackend } from '../secrets-backend.js';
import { describeCause, SecretBackendError } from '../secrets.errors.js';
import {
  azureSecretName,
  type AzureCredentialSpec,
  type AzureSecretsOptions,
} from './azure-secrets.options.js';

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
    this.client = new SecretClient(opts.vaultUrl, credentialFor(opts.credential), clientOptions);
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
      details: { kind: this.kind, vaultUrl: this.opts.vaultUrl, credential: this.opts.credential.kind },
    };
  }
}

function credentialFor(spec: AzureCredentialSpec): TokenCredential {
  const { clientId, tenantId } = spec;
  switch (spec.kind) {
    case 'default':
      return new DefaultAzureCredential(clientId ? { managedIdentityClientId: clientId } : {});
    case 'managed_identity':
      return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
    case 'workload_identity':
      return new WorkloadIdentityCredential({
        ...(clientId ? { clientId } : {}),
        ...(tenantId ? { tenantId } : {}),
      });
    case 'client_secret':
      return new ClientSecretCredential(tenantId!, clientId!, spec.clientSecret!);
  }
}
