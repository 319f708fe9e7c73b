import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { BackendOptions } from '../backend-options.js';
import type { SecretsBackend, SecretsBackendFactory } from '../secrets-backend.js';
import { describeCause, SecretBackendError } from '../secrets.errors.js';

export interface GcpSecretsOptions {
  project: string;
  /** Service-account key file; unset means Application Default Credentials. */
  keyFile?: string;
  /** `host` or `host:port` of the API; defaults to `secretmanager.googleapis.com`. */
  endpoint?: string;
  /** `https` unless a local emulator or fake is used. */
  protocol: 'https' | 'http';
  transport: 'rest' | 'grpc';
  /** Version alias or number to read. */
  version: string;
  maxRetries: number;
  timeoutMs: number;
}

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

export function gcpOptionsFrom(o: BackendOptions): GcpSecretsOptions {
  const project = o.requireString('project', 'GOOGLE_CLOUD_PROJECT');
  const keyFile = o.path('key_file');
  const endpoint = o.string('endpoint');
  const protocol = o.string('protocol') ?? 'https';
  if (protocol !== 'https' && protocol !== 'http')
    o.fail('protocol', `must be 'https' or 'http', got '${protocol}'`);
  const transport = o.string('transport') ?? 'rest';
  if (transport !== 'rest' && transport !== 'grpc')
    o.fail('transport', `must be 'rest' or 'grpc', got '${transport}'`);
  return {
    project,
    ...(keyFile ? { keyFile } : {}),
    ...(endpoint ? { endpoint } : {}),
    protocol,
    transport,
    version: o.string('version') ?? 'latest',
    maxRetries: o.number('max_retries', 2, 0),
    timeoutMs: o.number('timeout_ms', 5_000, 1),
  };
}

export const gcpSecretsFactory: SecretsBackendFactory = {
  kind: 'gcp',
  // Secret ids allow only letters, digits, `-` and `_`.
  defaultNameTemplate: '{tenant}--{env}--{name}',
  create: (tenant, options, bundleDir) =>
    new GcpSecretsBackend(gcpOptionsFrom(new BackendOptions('gcp', tenant, options, bundleDir))),
};
