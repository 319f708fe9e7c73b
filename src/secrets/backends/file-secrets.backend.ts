import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../common/errors.js';
import type { SecretsBackend, SecretsBackendFactory } from '../secrets-backend.js';

/**
 * A YAML or JSON file mapping backend names (`{tenant}/{env}/{name}`) to values; re-read when
 * its mtime changes so rotating a secret needs no restart.
 */
export class FileSecretsBackend implements SecretsBackend {
  readonly kind = 'file';
  private cache: { mtimeMs: number; values: Map<string, string> } | undefined;

  constructor(private readonly file: string) {}

  async get(name: string): Promise<string | undefined> {
    const values = await this.values();
    return values.get(name);
  }

  async health(): Promise<{ up: boolean; details: Record<string, unknown> }> {
    try {
      await stat(this.file);
      return { up: true, details: { kind: this.kind } };
    } catch {
      return { up: false, details: { kind: this.kind, error: 'secrets file not readable' } };
    }
  }

  private async values(): Promise<Map<string, string>> {
    const st = await stat(this.file);
    if (this.cache && this.cache.mtimeMs === st.mtimeMs) return this.cache.values;
    const doc: unknown = parseYaml(await readFile(this.file, 'utf8'));
    const values = new Map<string, string>();
    if (doc && typeof doc === 'object') {
      for (const [k, v] of Object.entries(doc as Record<string, unknown>))
        if (typeof v === 'string') values.set(k, v);
    }
    this.cache = { mtimeMs: st.mtimeMs, values };
    return values;
  }
}

export const fileSecretsFactory: SecretsBackendFactory = {
  kind: 'file',
  create: (_tenant, options, bundleDir) => {
    if (typeof options.path !== 'string') {
      throw new ConfigError("secrets backend 'file': option 'path' is required (a YAML/JSON file)");
    }
    return new FileSecretsBackend(path.resolve(bundleDir, options.path));
  },
};
