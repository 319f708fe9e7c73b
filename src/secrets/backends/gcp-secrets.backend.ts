import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import type { SecretsBackend } from '../secrets-backend.js';
import type { GcpSecretsOptions } from './gcp-secrets.options.js';
import { describeCause, SecretBackendError } from '../secrets.errors.js';

/** gRPC status codes the client reports (also for the REST transport). */
const NOT_FOUND = 5;

/**
 * GCP Secret Manager through the official `@google-cloud/secret-manager` client
 * (AccessSecretVersion). Transport defaults to the client's REST mode (`fallback: true`,
 * `GET /v1/projects/*\/secrets/*\/versions/*:access`): it is the documented HTTP API, goes through
 * ordinary HTTP proxies, and is what the tests' local server speaks. `transport: grpc` uses gRPC.
 * Credentials: a key file named in the bundle, else Application Default Credentials.
 */
export class GcpSecretsBackend implements SecretsBackend {
  readonly kind = 'gcp';
  private readonly client: SecretManagerServiceClient;

  constructor(private readonly opts: GcpSecretsOptions) {
    let host: string | undefined;
    let port: number | undefined;
    if (opts.endpoint) {
      const m = /^(.*?)(?::(\d+))?$/.exec(opts.endpoint)!;
      host = m[1];
      port = m[2] ? Number(m[2]) : undefined;
    }
    this.client = new SecretManagerServiceClient({
      projectId: opts.project,
      ...(opts.keyFile ? { keyFilename: opts.keyFile } : {}),
      ...(host ? { apiEndpoint: host } : {}),
      ...(port ? { port } : {}),
      ...(opts.transport === 'rest' ? { fallback: true, protocol: opts.protocol } : {}),
    } as ConstructorParameters<typeof SecretManagerServiceClient>[0]);
  }

  async get(name: string): Promise<string | undefined> {
    const resource = `projects/${this.opts.project}/secrets/${name}/versions/${this.opts.version}`;
    try {
      const [res] = await this.client.accessSecretVersion(
        { name: resource },
        { timeout: this.opts.timeoutMs, maxRetries: this.opts.maxRetries },
      );
      const data = res.payload?.data;
      if (data === undefined || data === null) return undefined;
      return typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw new SecretBackendError(this.kind, name, describeCause(e), { project: this.opts.project });
    }
  }

  async health(): Promise<{ up: boolean; details: Record<string, unknown> }> {
    return {
      up: true,
      details: { kind: this.kind, project: this.opts.project, transport: this.opts.transport },
    };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/**
 * gRPC reports NOT_FOUND as code 5; the REST transport (gaxios underneath) throws before gax
 * decodes the body, with the HTTP status on the error or its response.
 */
function isNotFound(e: unknown): boolean {
  const err = e as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  return err.code === NOT_FOUND || err.status === 404 || err.response?.status === 404;
}
