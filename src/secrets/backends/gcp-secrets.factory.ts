import type { SecretsBackendFactory } from '../secrets-backend.js';
import { createLazily } from './lazy-secrets.backend.js';
import { gcpOptionsFrom } from './gcp-secrets.options.js';

/**
 * GCP Secret Manager for a tenant's binding. Its options are checked at bundle load; its client
 * (`gcp-secrets.backend.ts`) is imported at the first read.
 */
export const gcpSecretsFactory: SecretsBackendFactory = {
  kind: 'gcp',
  // Secret ids allow only letters, digits, `-` and `_`.
  defaultNameTemplate: '{tenant}--{env}--{name}',
  create: createLazily('gcp', gcpOptionsFrom, async (opts) => {
    const { GcpSecretsBackend } = await import('./gcp-secrets.backend.js');
    return new GcpSecretsBackend(opts);
  }),
};
