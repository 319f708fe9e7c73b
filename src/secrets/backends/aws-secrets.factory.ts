import type { SecretsBackendFactory } from '../secrets-backend.js';
import { createLazily } from './lazy-secrets.backend.js';
import { awsOptionsFrom } from './aws-secrets.options.js';

/**
 * AWS Secrets Manager for a tenant's binding. Its options are checked at bundle load; its client
 * (`aws-secrets.backend.ts`) is imported at the first read.
 */
export const awsSecretsFactory: SecretsBackendFactory = {
  kind: 'aws',
  create: createLazily('aws', awsOptionsFrom, async (opts) => {
    const { AwsSecretsBackend } = await import('./aws-secrets.backend.js');
    return new AwsSecretsBackend(opts);
  }),
};
