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

/** A value an arg mapping resolves: a state path (`in.city`), a `{{template}}`, or a literal. */
const mappedValue = {
  description:
    "A dotted path rooted at in, parameters, session, message or a node id reads that value; a string with '{{' is a Handlebars template; anything else is literal.",
};
const argsMapping = {
  type: 'object',
  description: 'The component input; each value is a state path, a {{template}} or a literal.',
  additionalProperties: mappedValue,
};

const execBody = (op: string): Record<string, unknown> => ({
  type: 'object',
  // No `required`: upstream packs may bind the component in a `.ygtc.resolve.json` sidecar instead.
  description: `${op}: call an operation of a pack component named in the config.`,
  properties: {
    component: { type: 'string', minLength: 1, description: 'Component name (pack.yaml components[].name).' },
    operation: {
      type: 'string',
      minLength: 1,
      description: "Operation to call; default: the component's default.",
    },
    action: { type: 'string', minLength: 1, description: "Alias of 'operation'." },
    args: argsMapping,
  },
});

const replyBody = (op: string): Record<string, unknown> => ({
  description: `${op}: send a reply: a text template, or { text, card, choices }.`,
  oneOf: [
    { type: 'string', description: 'Text (Handlebars template).' },
    {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        text: { type: 'string', description: 'Handlebars template over the flow state.' },
        card: { type: 'object', description: 'An Adaptive Card; its strings may hold {{templates}}.' },
        choices: { type: 'array', items: { type: 'string' }, description: 'Quick replies.' },
      },
    },
  ],
});

/**
 * The bodies of the built-in operations, for editors (completion and hover inside a node). The
 * loader validates with `YGTC_CHECK_SCHEMA`, which leaves them out: the flow planner checks these
 * configs itself, with messages that name the node, and one message per mistake is enough.
 */
export const BUILTIN_NODE_BODIES: Readonly<Record<string, Record<string, unknown>>> = {
  'qa.process': {
    type: 'object',
    description: 'Ask questions one at a time; the flow parks until each answer comes.',
    properties: {
      welcome: { type: 'string', description: 'Sent once before the first question (a template).' },
      questions: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id', 'prompt'],
          properties: {
            id: { type: 'string', minLength: 1, description: 'The answer lands at in.<id>.' },
            prompt: { type: 'string', minLength: 1, description: 'The question (a template).' },
            answer_type: { enum: ['text', 'number', 'choice'], default: 'text' },
            max_words: { type: 'integer', minimum: 1, description: 'text answers: at most this many words.' },
            choices: {
              type: 'array',
              description:
                "choice answers: strings or { value, label }; the user may type either or the choice's number.",
              items: {
                oneOf: [
                  { type: ['string', 'number', 'boolean'] },
                  {
                    type: 'object',
                    required: ['value'],
                    properties: { value: { type: ['string', 'number'] }, label: { type: 'string' } },
                  },
                ],
              },
            },
            options: { type: 'array', description: "Alias of 'choices'." },
            optional: { type: 'boolean', description: 'An empty answer is accepted as null.' },
          },
        },
      },
    },
  },
  'templating.handlebars': {
    description:
      'Render a Handlebars template over the flow state; the text is the reply unless reply: false.',
    oneOf: [
      { type: 'string' },
      {
        type: 'object',
        properties: {
          text: { type: 'string' },
          template: { type: 'string', description: "Alias of 'text'." },
          reply: {
            type: 'boolean',
            default: true,
            description: 'false: render only, into <node>.payload.text.',
          },
        },
      },
    ],
  },
  'component.exec': execBody('component.exec'),
  'mcp.exec': execBody('mcp.exec'),
  mcp: {
    type: 'object',
    required: ['server', 'tool'],
    description: "Upstream's MCP node: call tool 'tool' of the pack component 'server'.",
    properties: {
      server: { type: 'string', minLength: 1 },
      tool: { type: 'string', minLength: 1 },
      arguments: argsMapping,
      output: { type: 'string', description: 'State key the result also lands under.' },
    },
  },
  reply: replyBody('reply'),
  emit: replyBody('emit'),
  'flow.call': {
    description: 'Run another flow of the same pack; its result lands at <node>.payload.',
    oneOf: [
      { type: 'string', minLength: 1, description: 'The flow id.' },
      {
        type: 'object',
        additionalProperties: false,
        properties: {
          flow_id: { type: 'string', minLength: 1 },
          flow: { type: 'string', minLength: 1, description: "Alias of 'flow_id'." },
          input: { type: 'object', description: "Mapped from this flow's state: the sub-flow's 'in'." },
          output: { description: "A path or mapping over the sub-flow's final state." },
        },
      },
    ],
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

function flowSchema(nodeSchema: Record<string, unknown>) {
  return {
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
        patternProperties: { [NODE_NAME_PATTERN]: nodeSchema },
        additionalProperties: false,
      },
    },
  };
}

/** What the loader validates: the node bodies of built-ins are the planner's to check. */
export const YGTC_CHECK_SCHEMA = flowSchema(node);

/** The published schema (`greentic-flow schema`): the same, plus the built-in node bodies for editors. */
export const YGTC_FLOW_SCHEMA = flowSchema({
  ...node,
  properties: { ...node.properties, ...BUILTIN_NODE_BODIES },
});
