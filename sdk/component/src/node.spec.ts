import { describe, expect, it } from 'vitest';
import { decodeCbor, encodeCbor } from './cbor.js';
import { HostError, InvalidInputError, NodeError, hostCall } from './errors.js';
import { defineExecute, type Message } from './execute.js';
import { defineNode, defineUpstreamNode, type InvocationEnvelope, type NodeErrorRecord } from './node.js';

function envelope(payload: unknown, metadata?: unknown): InvocationEnvelope {
  return {
    ctx: {
      tenantId: 'acme',
      teamId: undefined,
      userId: 'u1',
      envId: 'dev',
      traceId: 't',
      correlationId: 'c',
      deadlineMs: 1n,
      attempt: 1,
      idempotencyKey: undefined,
      i18nId: 'en',
    },
    flowId: 'f',
    stepId: 's',
    componentId: 'greeter',
    attempt: 1,
    payloadCbor: payload === undefined ? new Uint8Array(0) : encodeCbor(payload),
    metadataCbor: metadata === undefined ? undefined : encodeCbor(metadata),
  };
}

/** What componentize-js would turn into `err(...)`: the thrown `{ payload }`. */
function nodeErrorOf(fn: () => unknown): NodeErrorRecord {
  try {
    fn();
  } catch (e) {
    return (e as { payload: NodeErrorRecord }).payload;
  }
  throw new Error('expected the call to throw');
}

const definition = {
  name: 'greeter',
  version: '1.2.3',
  summary: 'greets',
  operations: {
    greet: {
      summary: 'Greets someone',
      input: { type: 'object', properties: { name: { type: 'string' } } },
      handler(input: { name?: string }, call: { tenant: { tenantId: string }; metadata(): unknown }) {
        if (input.name === 'nobody') throw new InvalidInputError('who?', { field: 'name' });
        if (input.name === 'later')
          throw new NodeError('busy', 'try later', { retryable: true, backoffMs: 250 });
        if (input.name === 'host')
          hostCall('greentic:host/http', () => {
            throw Object.assign(new Error('refused'), {
              payload: { code: 'denied', message: "host 'x' is not allowed" },
            });
          });
        if (input.name === 'boom') throw new TypeError('oops');
        return { text: `Hello ${input.name ?? 'there'} from ${call.tenant.tenantId}`, meta: call.metadata() };
      },
    },
  },
};

describe('defineNode (runner greentic:component@0.6.0)', () => {
  const { node, componentDescriptor } = defineNode(definition);

  it('describes the operations as CBOR, with default object schemas', () => {
    expect(decodeCbor(componentDescriptor.describe())).toEqual({
      name: 'greeter',
      version: '1.2.3',
      summary: 'greets',
      operations: [
        {
          name: 'greet',
          summary: 'Greets someone',
          input_schema: { type: 'object', properties: { name: { type: 'string' } } },
          output_schema: { type: 'object' },
        },
      ],
    });
  });

  it('decodes the input, calls the handler with the tenant and metadata, encodes the output', () => {
    const r = node.invoke('greet', envelope({ name: 'Ada' }, { m: 1 }));
    expect(r.ok).toBe(true);
    expect(r.outputMetadataCbor).toBeUndefined();
    expect(decodeCbor(r.outputCbor)).toEqual({ text: 'Hello Ada from acme', meta: { m: 1 } });
    expect(decodeCbor(node.invoke('greet', envelope(undefined)).outputCbor)).toEqual({
      text: 'Hello there from acme',
    });
  });

  it('turns thrown errors into node-error records', () => {
    expect(nodeErrorOf(() => node.invoke('nope', envelope({})))).toEqual({
      code: 'unknown_operation',
      message: "no operation 'nope' (this component has: greet)",
      retryable: false,
      backoffMs: undefined,
      details: undefined,
    });
    const invalid = nodeErrorOf(() => node.invoke('greet', envelope({ name: 'nobody' })));
    expect(invalid).toMatchObject({ code: 'invalid_input', message: 'who?', retryable: false });
    expect(decodeCbor(invalid.details!)).toEqual({ field: 'name' });
    expect(nodeErrorOf(() => node.invoke('greet', envelope({ name: 'later' })))).toMatchObject({
      code: 'busy',
      retryable: true,
      backoffMs: 250n,
    });
    expect(nodeErrorOf(() => node.invoke('greet', envelope({ name: 'host' })))).toMatchObject({
      code: 'host_denied',
      message: "greentic:host/http: host 'x' is not allowed",
      retryable: false,
    });
    expect(nodeErrorOf(() => node.invoke('greet', envelope({ name: 'boom' })))).toMatchObject({
      code: 'component_failed',
      message: 'oops',
    });
  });
});

describe('defineUpstreamNode (upstream greentic:component@0.6.0)', () => {
  it('describes with io-schema records holding inline CBOR, and invokes like defineNode', () => {
    const { node } = defineUpstreamNode(definition);
    const d = node.describe();
    expect(d).toMatchObject({ name: 'greeter', version: '1.2.3', summary: 'greets', capabilities: [] });
    expect(d.ops).toHaveLength(1);
    const op = d.ops[0]!;
    expect(op).toMatchObject({ name: 'greet', summary: 'Greets someone', examples: [] });
    expect(op.input.contentType).toBe('application/cbor');
    expect(op.input.schema.tag).toBe('inline-cbor');
    expect(decodeCbor(op.input.schema.val as Uint8Array)).toEqual(definition.operations.greet.input);
    expect(decodeCbor(op.output.schema.val as Uint8Array)).toEqual({ type: 'object' });
    expect(decodeCbor(node.invoke('greet', envelope({ name: 'Bo' })).outputCbor)).toMatchObject({
      text: 'Hello Bo from acme',
    });
  });
});

describe('defineExecute (seed greentic:component@0.1.0)', () => {
  const message: Message = { id: 'm', content: 'hi', sender: 'u', timestamp: 0n };

  it('answers text as is, other values as JSON, and errors as a failed outcome', () => {
    expect(defineExecute((m) => m.content.toUpperCase())(message)).toEqual({
      success: true,
      data: 'HI',
      error: undefined,
    });
    expect(defineExecute(() => ({ n: 1 }))(message).data).toBe('{"n":1}');
    expect(defineExecute(() => undefined)(message)).toEqual({
      success: true,
      data: undefined,
      error: undefined,
    });
    expect(
      defineExecute(() => {
        throw new HostError('greentic:host/secrets', 'not-found', "secret 'k' is not set");
      })(message),
    ).toEqual({
      success: false,
      data: undefined,
      error: "host_not_found: greentic:host/secrets: secret 'k' is not set",
    });
  });
});

describe('hostCall', () => {
  it('maps an enum error payload (upstream secrets-store) and passes other errors through', () => {
    expect(() =>
      hostCall('greentic:secrets-store/secrets-store', () => {
        throw Object.assign(new Error('x'), { payload: 'denied' });
      }),
    ).toThrow(expect.objectContaining({ code: 'host_denied', hostCode: 'denied' }));
    const plain = new RangeError('plain');
    expect(() =>
      hostCall('i', () => {
        throw plain;
      }),
    ).toThrow(plain);
  });
});
