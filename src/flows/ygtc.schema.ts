/**
 * JSON Schema (2020-12) of a `.ygtc` flow, after greentic-flow's `schemas/ygtc.flow.schema.json`
 * (commit 88e39aa): `retry`, `timeout` and `when` are mappings of any keys there, so they are here;
 * the keys this runner executes (`retry: {max_attempts, backoff_ms}`, `timeout: {ms | duration}`,
 * `when: {condition}`) are read by the loader, which warns about the rest. Stricter than upstream
 * only where the runner needs it: route targets are non-empty. "Exactly one operation key per
 * node" and the `mcp` payload cannot be said in JSON Schema; the loader checks them.
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
  // Upstream's reserved node keys: input/output/error mappings and the operation sibling of `component.exec`.
  'in_map',
  'out_map',
  'err_map',
  'operation',
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
  minProperties: 1,
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
      'x-message': 'must be a mapping, e.g. { max_attempts: 3, backoff_ms: 200 }',
      description: 'Runner reads max_attempts (1-100) and backoff_ms (0-600000).',
    },
    timeout: {
      type: 'object',
      'x-message': "must be a mapping, e.g. { ms: 2000 } or { duration: '2s' }",
      description: "Runner reads ms (a positive number) or duration ('250ms', '5s', '1m30s').",
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
    when: {
      type: 'object',
      'x-message': 'must be a mapping, e.g. { condition: \'session.tier == "gold"\' }',
      description: 'Runner reads condition: the node runs only when it holds.',
    },
    in_map: { description: 'Input mapping: replaces the operation payload as the component input.' },
    out_map: { description: "Output mapping over the state, the result as 'out'." },
    err_map: { description: "What the node yields instead of failing, the error as 'error'." },
    operation: { type: 'string', minLength: 1, description: 'Operation of a component.exec node.' },
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
    schema_version: { type: 'integer', minimum: 1 },
    slot_schema: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'slot_type'],
        properties: {
          name: { type: 'string', minLength: 1 },
          slot_type: { type: 'string', enum: ['string', 'enum', 'number', 'date', 'boolean'] },
          pattern: { type: 'string' },
          required: { type: 'boolean' },
          enum_values: { type: 'array', items: { type: 'string' } },
          default_value: { type: 'string' },
        },
        additionalProperties: false,
        allOf: [
          {
            if: { properties: { slot_type: { const: 'string' } }, required: ['slot_type'] },
            then: { required: ['pattern'], properties: { pattern: { type: 'string', minLength: 1 } } },
          },
          {
            if: { properties: { slot_type: { const: 'enum' } }, required: ['slot_type'] },
            then: {
              required: ['enum_values'],
              properties: { enum_values: { type: 'array', minItems: 1, items: { type: 'string' } } },
            },
          },
        ],
      },
    },
    nodes: {
      type: 'object',
      minProperties: 1,
      patternProperties: { [NODE_NAME_PATTERN]: node },
      additionalProperties: false,
    },
  },
} as const;
