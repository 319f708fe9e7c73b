import type { Bundle } from '../../tenancy/bundle.types.js';

/**
 * The providers the runner itself registers (the five channel modules, the generic webhook, and
 * timers). Only `greentic-runner validate`, which starts no messaging, needs the list written
 * down; a spec checks it against what a running app's ProviderRegistry discovers.
 */
export const BUILTIN_PROVIDER_IDS: readonly string[] = [
  'slack',
  'teams',
  'telegram',
  'timer',
  'webchat',
  'webhook',
  'whatsapp',
];

/** One channel bound to a provider nobody registered. */
export interface UnknownChannelProvider {
  tenant: string;
  env: string;
  team: string;
  channel: string;
  provider: string;
  /** The bundle key, as config errors name it. */
  key: string;
  message: string;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * Every channel whose provider is not registered. Such a channel would start ready and answer
 * every message 404 `unknown_provider`; start-up and `validate` refuse it instead, naming the
 * key, the provider and the registered ones (and the likely intended one for a typo).
 */
export function unknownChannelProviders(
  bundle: Bundle,
  registered: Iterable<string>,
): UnknownChannelProvider[] {
  const ids = [...new Set(registered)].sort();
  const known = new Set(ids);
  const out: UnknownChannelProvider[] = [];
  for (const t of bundle.tenants.values()) {
    for (const e of t.envs.values()) {
      for (const tm of e.teams.values()) {
        for (const c of tm.channels.values()) {
          if (known.has(c.provider)) continue;
          const key = `tenants.${t.id}.envs.${e.id}.teams.${tm.id}.channels.${c.id}.provider`;
          const near = ids
            .map((id) => ({ id, d: editDistance(id, c.provider) }))
            .filter((x) => x.d <= 2)
            .sort((a, b) => a.d - b.d)[0];
          out.push({
            tenant: t.id,
            env: e.id,
            team: tm.id,
            channel: c.id,
            provider: c.provider,
            key,
            message: `${bundle.file}: key '${key}': unknown provider '${c.provider}'${near ? ` (did you mean '${near.id}'?)` : ''}; registered providers: ${ids.join(', ') || 'none'}`,
          });
        }
      }
    }
  }
  return out;
}
