import type { SecretsBackendFactory } from '../secrets-backend.js';
import { createLazily } from './lazy-secrets.backend.js';
import { azureOptionsFrom } from './azure-secrets.options.js';

/**
 * Azure Key Vault for a tenant's binding. Its options are checked at bundle load; its client
 * (`azure-secrets.backend.ts`) is imported at the first read.
 */
export const azureSecretsFactory: SecretsBackendFactory = {
  kind: 'azure',
  defaultNameTemplate: '{tenant}--{env}--{name}',
  create: createLazily('azure', azureOptionsFrom, async (opts) => {
    const { AzureSecretsBackend } = await import('./azure-secrets.backend.js');
    return new AzureSecretsBackend(opts);
  }),
};
