import type { BackendOptions } from '../backend-options.js';

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
