import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  type SecretsManagerClientConfig,
} from '@aws-sdk/client-secrets-manager';
import type { SecretsBackend } from '../secrets-backend.js';
import type { AwsSecretsOptions } from './aws-secrets.options.js';
import { describeCause, SecretBackendError } from '../secrets.errors.js';

/**
 * AWS Secrets Manager through the official `@aws-sdk/client-secrets-manager` (GetSecretValue).
 * Credentials come from the SDK's default provider chain (environment, shared config, web
 * identity, ECS/EC2 roles), never from the bundle.
 */
export class AwsSecretsBackend implements SecretsBackend {
  readonly kind = 'aws';
  private readonly client: SecretsManagerClient;

  constructor(
    private readonly opts: AwsSecretsOptions,
    clientConfig: Partial<SecretsManagerClientConfig> = {},
  ) {
    this.client = new SecretsManagerClient({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      maxAttempts: opts.maxAttempts,
      requestHandler: { requestTimeout: opts.timeoutMs, connectionTimeout: opts.timeoutMs },
      ...clientConfig,
    });
  }

  async get(name: string): Promise<string | undefined> {
    try {
      const out = await this.client.send(
        new GetSecretValueCommand({
          SecretId: name,
          ...(this.opts.versionStage ? { VersionStage: this.opts.versionStage } : {}),
        }),
      );
      if (out.SecretString !== undefined) return out.SecretString;
      if (out.SecretBinary !== undefined) return Buffer.from(out.SecretBinary).toString('utf8');
      return undefined;
    } catch (e) {
      if (e instanceof ResourceNotFoundException) return undefined;
      throw new SecretBackendError(this.kind, name, describeCause(e), awsDetails(e));
    }
  }

  async health(): Promise<{ up: boolean; details: Record<string, unknown> }> {
    return {
      up: true,
      details: {
        kind: this.kind,
        region: this.opts.region,
        ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
      },
    };
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

function awsDetails(e: unknown): Record<string, unknown> {
  const meta = (e as { $metadata?: { httpStatusCode?: number; requestId?: string } }).$metadata;
  return meta ? { httpStatus: meta.httpStatusCode, requestId: meta.requestId } : {};
}
