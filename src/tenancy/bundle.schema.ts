/** JSON Schema of the bundle file. Ids become NATS subject tokens, hence the pattern. */
const ID = { type: 'string', pattern: '^[A-Za-z0-9_-]+$' } as const;
/**
 * A team id may not be `-` alone: tenant keys (sessions, delivery ledgers, provider stashes,
 * component instances) write `-` for "no team", so such a team would share the team-less keys.
 */
export const TEAM_ID = { type: 'string', pattern: '^(?!-$)[A-Za-z0-9_-]+$' } as const;
/**
 * Pack ids are no subject tokens: upstream's reverse-DNS ids (`ai.greentic.runner.example`) are
 * valid, dots between non-empty segments only.
 */
const PACK_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$' } as const;

// Rate limits, retry policy and timers (docs/flows.md).

/** `250ms`, `5s`, `1m30s`, or milliseconds. */
const DURATION = {
  oneOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', pattern: '^(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h))+$' },
  ],
} as const;

/** Token bucket: `rate` messages per `per` (default 1s), bursts of up to `burst` (default `rate`). */
const rateLimit = {
  type: 'object',
  additionalProperties: false,
  required: ['rate'],
  properties: {
    rate: { type: 'integer', minimum: 1 },
    per: DURATION,
    burst: { type: 'integer', minimum: 1 },
  },
} as const;

/** Default retry of component nodes that declare none (a node's own `retry` wins). */
const retry = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_attempts: { type: 'integer', minimum: 1, maximum: 100 },
    backoff_ms: { type: 'integer', minimum: 0, maximum: 600_000 },
  },
} as const;

/** A flow run on a schedule: `cron` (with `timezone`) or `interval`. */
const timer = {
  type: 'object',
  additionalProperties: false,
  required: ['pack', 'flow'],
  properties: {
    pack: PACK_ID,
    flow: { type: 'string', minLength: 1 },
    cron: { type: 'string', minLength: 1 },
    interval: DURATION,
    timezone: { type: 'string', minLength: 1 },
    catch_up: { type: 'boolean' },
    max_catch_up: { type: 'integer', minimum: 1, maximum: 10_000 },
    misfire_grace: DURATION,
    team: TEAM_ID,
    input: { type: 'object' },
    settings: { type: 'object' },
    secrets: { type: 'array', items: { type: 'string', minLength: 1 } },
    session_ttl_seconds: { type: 'integer', minimum: 1 },
  },
} as const;

/**
 * A WebChat channel's `settings.allowed_origins`: the sites (`https://host[:port]`, no path) whose
 * pages may call its Direct Line; `*` (any) only in a dev env, which the loader checks.
 */
const allowedOrigins = {
  type: 'array',
  items: {
    type: 'string',
    pattern: '^(\\*|https?://([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?)$',
  },
} as const;

const channel = {
  type: 'object',
  additionalProperties: false,
  required: ['provider', 'pack', 'flow'],
  properties: {
    provider: { type: 'string', minLength: 1 },
    delivery: { enum: ['at_least_once', 'at_most_once'] },
    pack: PACK_ID,
    flow: { type: 'string', minLength: 1 },
    session_ttl_seconds: { type: 'integer', minimum: 1 },
    settings: { type: 'object' },
    secrets: { type: 'array', items: { type: 'string', minLength: 1 } },
    secret_refs: { type: 'object', additionalProperties: { type: 'string' } },
    rate_limit: rateLimit,
    retry,
  },
  if: { required: ['provider'], properties: { provider: { const: 'webchat' } } },
  then: { properties: { settings: { properties: { allowed_origins: allowedOrigins } } } },
} as const;

const limits = {
  type: 'object',
  additionalProperties: false,
  properties: {
    component_deadline_ms: { type: 'integer', minimum: 1 },
    component_memory_mb: { type: 'integer', minimum: 1 },
    flow_step_limit: { type: 'integer', minimum: 1 },
    max_body_bytes: { type: 'integer', minimum: 1 },
    // Past ~1,000 levels JSON.stringify (replies, the bus, logs) may run out of stack.
    max_json_depth: { type: 'integer', minimum: 1, maximum: 1000 },
    max_json_keys: { type: 'integer', minimum: 1 },
    component_pool_min: { type: 'integer', minimum: 0 },
    component_pool_max: { type: 'integer', minimum: 1 },
    component_queue_size: { type: 'integer', minimum: 0 },
  },
} as const;

const http = {
  type: 'object',
  additionalProperties: false,
  properties: {
    allow: {
      type: 'array',
      items: {
        type: 'string',
        pattern: '^(\\*\\.)?[A-Za-z0-9.-]+(:[0-9]+)?$|^\\[[0-9A-Fa-f:.]+\\](:[0-9]+)?$',
      },
    },
    timeout_ms: { type: 'integer', minimum: 1 },
    max_response_bytes: { type: 'integer', minimum: 1 },
  },
} as const;

export const BUNDLE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['tenants'],
  properties: {
    version: { type: ['string', 'number'] },
    // Custom messaging provider modules loaded at start-up: a path (relative to the bundle) or a
    // package name, optionally `#ExportName` (docs/providers.md).
    provider_modules: { type: 'array', items: { type: 'string', minLength: 1 } },
    trust: {
      type: 'object',
      additionalProperties: false,
      properties: {
        policy: { enum: ['strict', 'dev'] },
        keys: { type: 'array', items: { type: 'string' } },
      },
    },
    limits,
    tenants: {
      type: 'object',
      minProperties: 1,
      propertyNames: ID,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['envs'],
        properties: {
          packs: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['id', 'source'],
              properties: {
                id: PACK_ID,
                source: { type: 'string', minLength: 1 },
                digest: { type: 'string' },
                // Packs whose flows replace this pack's flows of the same id (see docs/packs.md).
                overlays: {
                  type: 'array',
                  items: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['id', 'source'],
                    properties: {
                      id: PACK_ID,
                      source: { type: 'string', minLength: 1 },
                      digest: { type: 'string' },
                    },
                  },
                },
              },
            },
          },
          secrets: {
            type: 'object',
            additionalProperties: false,
            required: ['backend'],
            properties: { backend: { type: 'string' }, options: { type: 'object' } },
          },
          limits,
          http,
          rate_limit: rateLimit,
          retry,
          envs: {
            type: 'object',
            minProperties: 1,
            propertyNames: ID,
            additionalProperties: {
              type: 'object',
              additionalProperties: false,
              required: ['teams'],
              properties: {
                timers: { type: 'object', propertyNames: ID, additionalProperties: timer },
                teams: {
                  type: 'object',
                  minProperties: 1,
                  propertyNames: TEAM_ID,
                  additionalProperties: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['channels'],
                    properties: {
                      channels: { type: 'object', propertyNames: ID, additionalProperties: channel },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;
