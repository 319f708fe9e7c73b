import type { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import type { SecretsService } from './secrets.service.js';

/** A channel `secret_refs` entry that does not resolve to a value. */
export interface UnresolvedSecretRef {
  tenant: string;
  env: string;
  team: string;
  channel: string;
  /** The logical name the provider asks for (`signing_secret`). */
  ref: string;
  /** The secret name it maps to (`hooks_signing_secret`). */
  secret: string;
  backend: string;
  /** What to set: the environment variable, or the backend's name for it. */
  where: string;
  /** `missing`: the backend answered it has no value; `unreadable`: the backend could not answer. */
  reason: 'missing' | 'unreadable';
  message: string;
}

/**
 * Resolves every channel's `secret_refs` through its tenant's SecretsService (cache included),
 * so a channel that would answer 500 on its first message is reported before it gets one.
 * Values are only tested for presence, never returned.
 */
export async function unresolvedSecretRefs(
  registry: BundleRegistry,
  secrets: SecretsService,
): Promise<UnresolvedSecretRef[]> {
  const checks: Promise<UnresolvedSecretRef | undefined>[] = [];
  for (const t of registry.tenants()) {
    for (const e of t.envs.values()) {
      for (const tm of e.teams.values()) {
        const { ctx } = registry.resolveTenant({ tenant: t.id, env: e.id, team: tm.id });
        for (const c of tm.channels.values()) {
          for (const [ref, secret] of Object.entries(c.secretRefs)) {
            checks.push(
              (async () => {
                const at = secrets.locate(ctx, secret);
                const base = {
                  tenant: t.id,
                  env: e.id,
                  team: tm.id,
                  channel: c.id,
                  ref,
                  secret,
                  backend: at.backend,
                  where: at.where,
                };
                const channel = `tenant '${t.id}' channel '${e.id}/${tm.id}/${c.id}' (${c.provider})`;
                try {
                  const v = await secrets.get(ctx, secret);
                  if (v !== undefined && v !== '') return undefined;
                  return {
                    ...base,
                    reason: 'missing',
                    message: `${channel}: secret_refs.${ref} → secret '${secret}' is not set (set ${at.where})`,
                  };
                } catch (err) {
                  return {
                    ...base,
                    reason: 'unreadable',
                    message: `${channel}: secret_refs.${ref} → secret '${secret}' (${at.where}) could not be read: ${(err as Error).message}`,
                  };
                }
              })(),
            );
          }
        }
      }
    }
  }
  return (await Promise.all(checks)).filter((x): x is UnresolvedSecretRef => x !== undefined);
}
