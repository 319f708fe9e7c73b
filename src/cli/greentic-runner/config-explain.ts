import { RunnerConfig, validateRunnerConfig } from '../../config/runner-config.js';
import { loadBundle } from '../../tenancy/bundle.loader.js';

export type ConfigSource = 'flag' | 'env' | 'default';

export interface ExplainedValue {
  key: string;
  value: string;
  source: ConfigSource;
  redacted: boolean;
}

export interface ConfigExplanation {
  values: ExplainedValue[];
  bundle?: {
    file: string;
    tenants: {
      id: string;
      secretsBackend: string;
      secretsOptions: Record<string, unknown>;
      packs: string[];
      channels: number;
    }[];
  };
  bundleError?: string;
}

/** Keys whose whole value is a credential. */
const SECRET_KEYS = /(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY|API_KEY|CREDENTIALS?)$/i;
/** Bundle option keys that would hold a credential (the bundle should only name env vars/files). */
const SECRET_OPTION = /(token|secret|password|passwd|private_key|api_key|credentials?)$/i;

/** `scheme://user:password@host` → the password masked. */
export function redactUrl(value: string): string {
  return value.replace(
    /^([a-z][a-z0-9+.-]*:\/\/)([^:@/]*):([^@/]+)@/i,
    (_m, scheme: string, user: string) => `${scheme}${user}:[redacted]@`,
  );
}

function redactOptions(o: unknown, depth = 0): unknown {
  if (depth > 5 || o === null || typeof o !== 'object') return o;
  if (Array.isArray(o)) return o.map((x) => redactOptions(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    out[k] =
      typeof v === 'string' && SECRET_OPTION.test(k)
        ? '[redacted]'
        : typeof v === 'string'
          ? redactUrl(v)
          : redactOptions(v, depth + 1);
  }
  return out;
}

/**
 * The effective configuration and where each value came from: a command-line flag, the
 * environment, or the default. Credentials are masked (admin token, passwords inside URLs, any
 * bundle option named like a credential); secret values are never read at all.
 */
export function explainConfig(
  env: NodeJS.ProcessEnv,
  flags: Record<string, string | undefined>,
): ConfigExplanation {
  const merged: Record<string, unknown> = { ...env };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  const cfg = validateRunnerConfig(merged);
  const keys = [...new Set([...Object.keys(new RunnerConfig()), 'GREENTIC_ADMIN_TOKEN'])].sort();
  const values: ExplainedValue[] = keys.map((key) => {
    const raw = (cfg as unknown as Record<string, unknown>)[key];
    const source: ConfigSource =
      flags[key] !== undefined ? 'flag' : env[key] !== undefined && env[key] !== '' ? 'env' : 'default';
    const plain = raw === undefined ? '' : String(raw);
    if (SECRET_KEYS.test(key) && plain !== '') return { key, value: '[redacted]', source, redacted: true };
    const value = redactUrl(plain);
    return { key, value, source, redacted: value !== plain };
  });
  const out: ConfigExplanation = { values };
  try {
    const bundle = loadBundle(cfg.GREENTIC_BUNDLE);
    out.bundle = {
      file: bundle.file,
      tenants: [...bundle.tenants.values()].map((t) => ({
        id: t.id,
        secretsBackend: t.secrets.backend,
        secretsOptions: redactOptions(t.secrets.options) as Record<string, unknown>,
        packs: t.packs.map((p) => `${p.id} (${p.source})`),
        channels: [...t.envs.values()].reduce(
          (n, e) => n + [...e.teams.values()].reduce((m, tm) => m + tm.channels.size, 0),
          0,
        ),
      })),
    };
  } catch (e) {
    out.bundleError = (e as Error).message;
  }
  return out;
}

export function formatExplanation(x: ConfigExplanation): string[] {
  const w = Math.max(...x.values.map((v) => v.key.length));
  const lines = ['Effective configuration (source: flag > env > default):', ''];
  for (const v of x.values)
    lines.push(`  ${v.key.padEnd(w)}  ${v.source.padEnd(7)}  ${v.value === '' ? '(empty)' : v.value}`);
  lines.push('');
  if (x.bundle) {
    lines.push(`Bundle ${x.bundle.file}:`);
    for (const t of x.bundle.tenants) {
      lines.push(`  tenant ${t.id}: ${t.channels} channel(s), packs ${t.packs.join(', ') || '(none)'}`);
      lines.push(`    secrets: ${t.secretsBackend} ${JSON.stringify(t.secretsOptions)}`);
    }
  } else if (x.bundleError) {
    lines.push(`Bundle: not loadable: ${x.bundleError}`);
  }
  return lines;
}
