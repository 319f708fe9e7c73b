import type { SecretsBackend, SecretsBackendFactory } from '../secrets-backend.js';

/** `demo/dev/api_key` → `GREENTIC_SECRET_DEMO_DEV_API_KEY`. */
export function envVarName(name: string): string {
  return 'GREENTIC_SECRET_' + name.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

export class EnvSecretsBackend implements SecretsBackend {
  readonly kind = 'env';
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  async get(name: string): Promise<string | undefined> {
    return this.env[envVarName(name)];
  }
}

export const envSecretsFactory: SecretsBackendFactory = {
  kind: 'env',
  create: () => new EnvSecretsBackend(),
};
