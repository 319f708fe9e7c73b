import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { ConfigError } from '../common/errors.js';
import { rateLimitOf, retryOf, type RawRateLimit, type RawRetry } from './bundle-rate-limits.js';
import { normaliseTimers, type RawTimer } from './bundle-timers.js';
import { BUNDLE_SCHEMA, TEAM_ID } from './bundle.schema.js';
import {
  DEFAULT_LIMITS,
  type Bundle,
  type BundleLimits,
  type ChannelBinding,
  type DeliveryMode,
  type EnvBinding,
  type TeamBinding,
  type TenantBinding,
} from './bundle.types.js';

const ajv = new Ajv({ allErrors: true, strict: false });
const validateSchema = ajv.compile(BUNDLE_SCHEMA);

/** Loads and validates a bundle file. Every problem names the file, line, key and what was expected. */
export function loadBundle(file: string): Bundle {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    throw new ConfigError(`bundle ${abs}: cannot read: ${(e as Error).message}`, { file: abs });
  }
  return parseBundle(text, abs);
}

export function parseBundle(text: string, file: string): Bundle {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    const msgs = doc.errors.map((e) => {
      const pos = lc.linePos(e.pos[0]);
      return `${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`;
    });
    throw new ConfigError(`invalid bundle:\n  ${msgs.join('\n  ')}`, { file });
  }
  const data: unknown = doc.toJS();
  if (!validateSchema(data)) {
    // An `if`/`then` failure is reported by the `then` keyword's own errors, which name the key.
    const msgs = (validateSchema.errors ?? [])
      // A bad key name is reported once, by `propertyNames`, not again by its inner `pattern`.
      .filter((e) => e.keyword !== 'if' && e.propertyName === undefined)
      .map((e) => describeSchemaError(e, doc, lc, file));
    throw new ConfigError(`invalid bundle:\n  ${[...new Set(msgs)].join('\n  ')}`, { file });
  }
  return normalise(data as RawBundle, file);
}

const ID_WORDS = 'letters, digits, _ and - only';
/** TEAM_ID in words. */
const TEAM_ID_WORDS = `${ID_WORDS}, and not '-' alone (it stands for "no team")`;

function describeSchemaError(e: ErrorObject, doc: Document, lc: LineCounter, file: string): string {
  const segs = e.instancePath.split('/').slice(1).map(unescapePointer);
  let key = segs.join('.');
  let expected = (e.message ?? 'a valid value').replace(/^must be /, '');
  if (e.keyword === 'required') {
    key = [...segs, (e.params as { missingProperty: string }).missingProperty].join('.');
    expected = 'a value (required)';
  } else if (e.keyword === 'additionalProperties') {
    key = [...segs, (e.params as { additionalProperty: string }).additionalProperty].join('.');
    expected = 'no such key (unknown key)';
    segs.push((e.params as { additionalProperty: string }).additionalProperty);
  } else if (e.keyword === 'enum') {
    expected = `one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
  } else if (e.keyword === 'propertyNames') {
    const name = (e.params as { propertyName: string }).propertyName;
    expected = `ids of ${segs.at(-1) === 'teams' ? TEAM_ID_WORDS : ID_WORDS}; found '${name}'`;
  } else if (e.keyword === 'pattern') {
    const pattern = (e.params as { pattern: string }).pattern;
    expected = pattern === TEAM_ID.pattern ? `a team id of ${TEAM_ID_WORDS}` : `a string matching ${pattern}`;
  }
  const node = doc.getIn(segs, true) as YamlNode | undefined;
  const offset = node?.range?.[0] ?? findParentOffset(doc, segs);
  const pos = offset !== undefined ? lc.linePos(offset) : { line: 1, col: 1 };
  return `${file}:${pos.line}:${pos.col}: key '${key || '(root)'}': expected ${expected}`;
}

function findParentOffset(doc: Document, segs: string[]): number | undefined {
  for (let n = segs.length - 1; n >= 0; n--) {
    const node = doc.getIn(segs.slice(0, n), true) as YamlNode | undefined;
    if (node?.range) return node.range[0];
  }
  return isMap(doc.contents) ? doc.contents.range?.[0] : undefined;
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

interface RawLimits {
  component_deadline_ms?: number;
  component_memory_mb?: number;
  flow_step_limit?: number;
  max_body_bytes?: number;
  max_json_depth?: number;
  max_json_keys?: number;
  component_pool_min?: number;
  component_pool_max?: number;
  component_queue_size?: number;
}
interface RawHttp {
  allow?: string[];
  timeout_ms?: number;
  max_response_bytes?: number;
}
interface RawChannel {
  provider: string;
  delivery?: DeliveryMode;
  pack: string;
  flow: string;
  session_ttl_seconds?: number;
  settings?: Record<string, unknown>;
  secrets?: string[];
  secret_refs?: Record<string, string>;
  rate_limit?: RawRateLimit;
  retry?: RawRetry;
}
interface RawTenant {
  packs?: { id: string; source: string; digest?: string }[];
  secrets?: { backend: string; options?: Record<string, unknown> };
  limits?: RawLimits;
  http?: RawHttp;
  rate_limit?: RawRateLimit;
  retry?: RawRetry;
  envs: Record<
    string,
    { teams: Record<string, { channels?: Record<string, RawChannel> }>; timers?: Record<string, RawTimer> }
  >;
}
interface RawBundle {
  provider_modules?: string[];
  trust?: { policy?: 'strict' | 'dev'; keys?: string[] };
  limits?: RawLimits;
  tenants: Record<string, RawTenant>;
}

function mergeLimits(base: BundleLimits, raw: RawLimits | undefined): BundleLimits {
  return {
    componentDeadlineMs: raw?.component_deadline_ms ?? base.componentDeadlineMs,
    componentMemoryMb: raw?.component_memory_mb ?? base.componentMemoryMb,
    flowStepLimit: raw?.flow_step_limit ?? base.flowStepLimit,
    maxBodyBytes: raw?.max_body_bytes ?? base.maxBodyBytes,
    maxJsonDepth: raw?.max_json_depth ?? base.maxJsonDepth,
    maxJsonKeys: raw?.max_json_keys ?? base.maxJsonKeys,
    ...optional('componentPoolMin', raw?.component_pool_min ?? base.componentPoolMin),
    ...optional('componentPoolMax', raw?.component_pool_max ?? base.componentPoolMax),
    ...optional('componentQueueSize', raw?.component_queue_size ?? base.componentQueueSize),
  };
}

function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

/** Envs where a WebChat channel may let any site's pages call it (`allowed_origins: ['*']`). */
export const DEV_ENV_IDS: readonly string[] = ['dev', 'development', 'local'];

function refuseAnyOriginOutsideDev(c: RawChannel, key: string, envId: string, file: string): void {
  const origins = c.settings?.['allowed_origins'];
  if (!Array.isArray(origins) || !origins.includes('*') || DEV_ENV_IDS.includes(envId)) return;
  throw new ConfigError(
    `invalid bundle:\n  ${file}: key '${key}.settings.allowed_origins': '*' (any origin) is allowed only in a dev env (${DEV_ENV_IDS.join(', ')}), not in env '${envId}'; list the sites' origins instead, e.g. https://www.example.com`,
    { file },
  );
}

function normalise(raw: RawBundle, file: string): Bundle {
  const limits = mergeLimits(DEFAULT_LIMITS, raw.limits);
  const tenants = new Map<string, TenantBinding>();
  for (const [tenantId, t] of Object.entries(raw.tenants)) {
    const packIds = new Set((t.packs ?? []).map((p) => p.id));
    const envs = new Map<string, EnvBinding>();
    for (const [envId, e] of Object.entries(t.envs)) {
      const teams = new Map<string, TeamBinding>();
      for (const [teamId, tm] of Object.entries(e.teams)) {
        const channels = new Map<string, ChannelBinding>();
        for (const [channelId, c] of Object.entries(tm.channels ?? {})) {
          if (!packIds.has(c.pack)) {
            throw new ConfigError(
              `invalid bundle:\n  ${file}: key 'tenants.${tenantId}.envs.${envId}.teams.${teamId}.channels.${channelId}.pack': expected one of the tenant's packs ${JSON.stringify([...packIds])}, got '${c.pack}'`,
              { file },
            );
          }
          if (c.provider === 'webchat') {
            refuseAnyOriginOutsideDev(
              c,
              `tenants.${tenantId}.envs.${envId}.teams.${teamId}.channels.${channelId}`,
              envId,
              file,
            );
          }
          channels.set(channelId, {
            id: channelId,
            provider: c.provider,
            delivery: c.delivery ?? 'at_least_once',
            pack: c.pack,
            flow: c.flow,
            sessionTtlSeconds: c.session_ttl_seconds ?? 3600,
            settings: c.settings ?? {},
            secrets: c.secrets ?? [],
            secretRefs: c.secret_refs ?? {},
            ...rateLimitOf(c.rate_limit),
            ...retryOf(c.retry),
          });
        }
        teams.set(teamId, { id: teamId, channels });
      }
      const timers = normaliseTimers(e.timers, { file, tenant: tenantId, env: envId, packIds, teams });
      envs.set(envId, { id: envId, teams, timers });
    }
    tenants.set(tenantId, {
      id: tenantId,
      envs,
      packs: t.packs ?? [],
      secrets: { backend: t.secrets?.backend ?? 'env', options: t.secrets?.options ?? {} },
      limits: mergeLimits(limits, t.limits),
      http: {
        allow: t.http?.allow ?? [],
        timeoutMs: t.http?.timeout_ms ?? 10_000,
        maxResponseBytes: t.http?.max_response_bytes ?? 1024 * 1024,
      },
      ...rateLimitOf(t.rate_limit),
      ...retryOf(t.retry),
    });
  }
  return {
    file,
    dir: path.dirname(file),
    tenants,
    trust: { policy: raw.trust?.policy ?? 'strict', keys: raw.trust?.keys ?? [] },
    limits,
    providerModules: raw.provider_modules ?? [],
  };
}
