/**
 * JSON Schema (2020-12) of a `.ygtc` flow, after greentic-flow's `schemas/ygtc.flow.schema.json`.
 * Differences, all stricter or runner-specific: routing rules, `retry` and `timeout` have the shapes
 * this runner executes, and `when` is an expression string. "Exactly one operation key per node"
 * cannot be said in JSON Schema; the loader checks it.
 *
 * `x-message` (an annotation, registered with ajv) gives the one message to show when a
 * `oneOf` fails as a whole, instead of one error per branch.
 */

/** Keys of a node that are not its operation. `annotations` is in the public schema too. */
export const NODE_RESERVED_KEYS: readonly string[] = [
  'routing',
  'output',
  'retry',
  'timeout',
  'telemetry',
  'when',
  'meta',
  'annotations',
];

export const NODE_NAME_PATTERN = '^[a-zA-Z_][\\w-]*$';
export const OPERATION_KEY_PATTERN = '^[A-Za-z_][\\w.-]*$';
/** `250ms`, `5s`, `1.5m`, `1h`, `1m30s`. */
export const DURATION_PATTERN = '^(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h))+$';

export const KNOWN_FLOW_TYPES = ['messaging', 'webhook', 'timer', 'websocket', 'pubsub'] as const;

const routeRule = {
  type: 'object',
  additionalProperties: false,
  properties: {
    to: { type: 'string', minLength: 1 },
    out: { type: 'boolean' },
    reply: { type: 'boolean' },
    status: { type: 'string' },
    condition: { type: 'string', minLength: 1 },
  },
};

const node = {
  type: 'object',
  properties: {
    routing: {
      'x-message': "must be 'out', 'reply' or a list of rules ({to, out, reply, status, condition})",
      oneOf: [
        { type: 'string', enum: ['out', 'reply'] },
        { type: 'array', items: routeRule },
      ],
    },
    output: { type: 'object' },
    retry: {
      type: 'object',
      additionalProperties: false,
      properties: {
        max_attempts: { type: 'integer', minimum: 1, maximum: 100 },
        backoff_ms: { type: 'integer', minimum: 0, maximum: 600_000 },
      },
    },
    timeout: {
      'x-message': "must be milliseconds (a positive number) or a duration such as '250ms', '5s' or '1m'",
      oneOf: [
        { type: 'number', exclusiveMinimum: 0 },
        { type: 'string', pattern: DURATION_PATTERN },
      ],
    },
    telemetry: {
      type: 'object',
      additionalProperties: false,
      properties: {
        span_name: { type: 'string' },
        attributes: { type: 'object', additionalProperties: { type: 'string' } },
        sampling: { type: 'string' },
      },
    },
    when: { type: ['string', 'boolean'] },
    meta: { type: 'object' },
    annotations: { type: 'object' },
  },
  patternProperties: {
    // The operation's config is opaque here: built-in nodes check theirs, components own theirs.
    [OPERATION_KEY_PATTERN]: {},
  },
  additionalProperties: false,
};

export const YGTC_FLOW_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:greentic-runner:ygtc.flow.schema.json',
  title: 'Greentic YGTC flow',
  type: 'object',
  required: ['id', 'type', 'nodes'],
  properties: {
    id: { type: 'string', minLength: 1 },
    type: {
      type: 'string',
      minLength: 1,
      description: `Flow kind: ${KNOWN_FLOW_TYPES.join(', ')} or a custom string.`,
    },
    title: { type: 'string' },
    description: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' } },
    start: { type: 'string', minLength: 1 },
    parameters: { type: 'object' },
    meta: { type: 'object' },
    entrypoints: { type: 'object' },
    schema_version: {
      'x-message': 'must be a positive integer or a version string',
      oneOf: [
        { type: 'integer', minimum: 1 },
        { type: 'string', minLength: 1 },
      ],
    },
    nodes: {
      type: 'object',
      minProperties: 1,
      patternProperties: { [NODE_NAME_PATTERN]: node },
      additionalProperties: false,
    },
  },
} as const;
