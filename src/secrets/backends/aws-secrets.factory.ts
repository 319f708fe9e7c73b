import type { BackendOptions } from '../backend-options.js';
import type { SecretsBackendFactory } from '../secrets-backend.js';
import { createLazily } from './lazy-secrets.backend.js';

export interface AwsSecretsOptions {
  region: string;
  /** Override of the service endpoint (VPC endpoint, LocalStack, the test fake). */
  endpoint?: string;
  /** Staging label to read; AWS answers `AWSCURRENT` when unset. */
  versionStage?: string;
  maxAttempts: number;
  timeoutMs: number;
}

export function awsOptionsFrom(o: BackendOptions): AwsSecretsOptions {
  const region = o.requireString('region', process.env['AWS_REGION'] ? 'AWS_REGION' : 'AWS_DEFAULT_REGION');
  const endpoint = o.string('endpoint');
  const versionStage = o.string('version_stage');
  return {
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(versionStage ? { versionStage } : {}),
    maxAttempts: o.number('max_attempts', 3, 1),
    timeoutMs: o.number('timeout_ms', 5_000, 1),
  };
}

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
