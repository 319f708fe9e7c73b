import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';

export interface TempPack {
  id: string;
  version?: string;
  /** file name → `.ygtc` text */
  flows: Record<string, string>;
  /** component name → path of a built `.wasm` */
  components?: Record<string, string>;
}

export interface TempChannel {
  provider?: string;
  delivery?: 'at_least_once' | 'at_most_once';
  pack: string;
  flow: string;
  settings?: Record<string, unknown>;
  secrets?: string[];
  secret_refs?: Record<string, string>;
  session_ttl_seconds?: number;
  rate_limit?: { rate: number; per?: string | number; burst?: number };
  retry?: { max_attempts?: number; backoff_ms?: number };
}

export interface TempTenant {
  packs: string[];
  envs?: Record<string, Record<string, Record<string, TempChannel>>>;
  channels?: Record<string, TempChannel>;
  limits?: Record<string, number>;
  secrets?: { backend: string; options?: Record<string, unknown> };
  rate_limit?: { rate: number; per?: string | number; burst?: number };
  retry?: { max_attempts?: number; backoff_ms?: number };
  /** env id → timer id → the bundle's timer binding (pack, flow, cron/interval...). */
  timers?: Record<string, Record<string, Record<string, unknown>>>;
  /** Outgoing HTTP of the tenant's components: `{ allow: [...], timeout_ms?, max_response_bytes? }`. */
  http?: Record<string, unknown>;
}

/**
 * Writes a bundle and its pack directories into a temp folder, so each test states exactly the
 * tenants, flows and components it runs. Returns the bundle file path.
 */
export function writeTempBundle(spec: {
  packs: TempPack[];
  tenants: Record<string, TempTenant>;
  limits?: Record<string, number>;
}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-bundle-'));
  for (const p of spec.packs) {
    const pdir = path.join(dir, 'packs', p.id);
    mkdirSync(path.join(pdir, 'flows'), { recursive: true });
    const flows: string[] = [];
    for (const [file, text] of Object.entries(p.flows)) {
      writeFileSync(path.join(pdir, 'flows', file), text);
      flows.push(`flows/${file}`);
    }
    const components: { name: string; version: string; path: string }[] = [];
    for (const [name, wasm] of Object.entries(p.components ?? {})) {
      mkdirSync(path.join(pdir, 'components', name), { recursive: true });
      copyFileSync(wasm, path.join(pdir, 'components', name, 'component.wasm'));
      components.push({ name, version: '0.1.0', path: `components/${name}/component.wasm` });
    }
    writeFileSync(
      path.join(pdir, 'pack.yaml'),
      stringify({ id: p.id, version: p.version ?? '0.1.0', flows, components }),
    );
  }
  const tenants: Record<string, unknown> = {};
  for (const [id, t] of Object.entries(spec.tenants)) {
    const envs = t.envs ?? { dev: { default: t.channels ?? {} } };
    tenants[id] = {
      packs: t.packs.map((p) => ({ id: p, source: `file:./packs/${p}` })),
      ...(t.limits ? { limits: t.limits } : {}),
      ...(t.secrets ? { secrets: t.secrets } : {}),
      ...(t.http ? { http: t.http } : {}),
      ...(t.rate_limit ? { rate_limit: t.rate_limit } : {}),
      ...(t.retry ? { retry: t.retry } : {}),
      envs: Object.fromEntries(
        Object.entries(envs).map(([env, teams]) => [
          env,
          {
            ...(t.timers?.[env] ? { timers: t.timers[env] } : {}),
            teams: Object.fromEntries(
              Object.entries(teams).map(([team, chans]) => [
                team,
                {
                  channels: Object.fromEntries(
                    Object.entries(chans).map(([c, ch]) => [c, { provider: 'webhook', ...ch }]),
                  ),
                },
              ]),
            ),
          },
        ]),
      ),
    };
  }
  const file = path.join(dir, 'bundle.yaml');
  writeFileSync(
    file,
    stringify({ trust: { policy: 'dev' }, ...(spec.limits ? { limits: spec.limits } : {}), tenants }),
  );
  return file;
}
