import type { BackendOptions } from '../backend-options.js';

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
