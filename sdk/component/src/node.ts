/**
 * Node worlds: `defineNode` for the runner's greentic:component@0.6.0 (node + component-descriptor),
 * `defineUpstreamNode` for upstream's greentic:component@0.6.0 (node.describe + node.invoke).
 * Handlers take the decoded input as a plain object and return a plain value; the SDK does the
 * CBOR, the descriptor and the error records.
 *
 *   export const { node, componentDescriptor } = defineNode({
 *     name: 'weather', version: '0.1.0',
 *     operations: { forecast: { input: { type: 'object' }, handler: (input) => ({ text: 'sunny' }) } },
 *   });
 */
import { decodeCbor, encodeCbor } from './cbor.js';
import { NodeError, UnknownOperationError } from './errors.js';

/** A JSON Schema, as a plain object. */
export type JsonSchema = Record<string, unknown>;

/** The call's tenant, as the node world's `tenant-ctx` record arrives in JavaScript. */
export interface TenantCtx {
  tenantId: string;
  teamId: string | undefined;
  userId: string | undefined;
  envId: string;
  traceId: string;
  correlationId: string;
  deadlineMs: bigint;
  attempt: number;
  idempotencyKey: string | undefined;
  i18nId: string;
}

export interface InvocationEnvelope {
  ctx: TenantCtx;
  flowId: string;
  stepId: string;
  componentId: string;
  attempt: number;
  payloadCbor: Uint8Array;
  metadataCbor: Uint8Array | undefined;
}

export interface InvocationResult {
  ok: boolean;
  outputCbor: Uint8Array;
  outputMetadataCbor: Uint8Array | undefined;
}

/** The world's `node-error` record. */
export interface NodeErrorRecord {
  code: string;
  message: string;
  retryable: boolean;
  backoffMs: bigint | undefined;
  details: Uint8Array | undefined;
}

/** What a handler sees besides its input. */
export interface CallContext {
  op: string;
  envelope: InvocationEnvelope;
  tenant: TenantCtx;
  /** The envelope's metadata, decoded (undefined when none). */
  metadata(): unknown;
}

export interface Operation<I = unknown, O = unknown> {
  summary?: string;
  input?: JsonSchema;
  output?: JsonSchema;
  /** Runs synchronously (component calls are synchronous); throw a NodeError for a flow-visible error. */
  handler(input: I, call: CallContext): O;
}

export interface NodeDefinition {
  name: string;
  version: string;
  summary?: string;
  operations: Record<string, Operation>;
}

const EMPTY_OBJECT_SCHEMA: JsonSchema = { type: 'object' };

function errorRecord(e: unknown): NodeErrorRecord {
  if (e instanceof NodeError) {
    return {
      code: e.code,
      message: e.message,
      retryable: e.retryable,
      backoffMs: e.backoffMs === undefined ? undefined : BigInt(Math.max(0, Math.round(e.backoffMs))),
      details: e.details === undefined ? undefined : encodeCbor(e.details),
    };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'component_failed', message, retryable: false, backoffMs: undefined, details: undefined };
}

/** The invoke both node worlds share: decode, dispatch, encode; errors thrown as `{ payload }`. */
function invoker(def: NodeDefinition): (op: string, envelope: InvocationEnvelope) => InvocationResult {
  const names = Object.keys(def.operations);
  return (op, envelope) => {
    try {
      const operation = def.operations[op];
      if (!operation) throw new UnknownOperationError(op, names);
      const input = envelope.payloadCbor.length === 0 ? {} : (decodeCbor(envelope.payloadCbor) ?? {});
      const call: CallContext = {
        op,
        envelope,
        tenant: envelope.ctx,
        metadata: () => (envelope.metadataCbor?.length ? decodeCbor(envelope.metadataCbor) : undefined),
      };
      const output = operation.handler(input, call);
      return { ok: true, outputCbor: encodeCbor(output), outputMetadataCbor: undefined };
    } catch (e) {
      // componentize-js turns a thrown `{ payload }` into the result's `err(payload)`.
      throw { payload: errorRecord(e) };
    }
  };
}

/** The runner's greentic:component@0.6.0: exports `node` and `componentDescriptor`. */
export function defineNode(def: NodeDefinition): {
  node: { invoke(op: string, envelope: InvocationEnvelope): InvocationResult };
  componentDescriptor: { describe(): Uint8Array };
} {
  const descriptor = encodeCbor({
    name: def.name,
    version: def.version,
    ...(def.summary === undefined ? {} : { summary: def.summary }),
    operations: Object.entries(def.operations).map(([name, op]) => ({
      name,
      ...(op.summary === undefined ? {} : { summary: op.summary }),
      input_schema: op.input ?? EMPTY_OBJECT_SCHEMA,
      output_schema: op.output ?? EMPTY_OBJECT_SCHEMA,
    })),
  });
  return { node: { invoke: invoker(def) }, componentDescriptor: { describe: () => descriptor } };
}

/** Upstream's `schema-source` and `io-schema` records. */
export type SchemaSource =
  | { tag: 'cbor-schema-id'; val: string }
  | { tag: 'inline-cbor'; val: Uint8Array }
  | { tag: 'ref-pack-path'; val: string }
  | { tag: 'ref-uri'; val: string };

export interface IoSchema {
  schema: SchemaSource;
  contentType: string;
  schemaVersion: string | undefined;
}

export interface UpstreamDescriptor {
  name: string;
  version: string;
  summary: string | undefined;
  capabilities: string[];
  ops: Array<{
    name: string;
    summary: string | undefined;
    input: IoSchema;
    output: IoSchema;
    examples: never[];
  }>;
  schemas: never[];
  setup: undefined;
}

function ioSchema(schema: JsonSchema | undefined): IoSchema {
  return {
    schema: { tag: 'inline-cbor', val: encodeCbor(schema ?? EMPTY_OBJECT_SCHEMA) },
    contentType: 'application/cbor',
    schemaVersion: undefined,
  };
}

/** Upstream's greentic:component@0.6.0 (`--world upstream`): exports `node` with describe and invoke. */
export function defineUpstreamNode(def: NodeDefinition & { capabilities?: string[] }): {
  node: {
    describe(): UpstreamDescriptor;
    invoke(op: string, envelope: InvocationEnvelope): InvocationResult;
  };
} {
  const descriptor: UpstreamDescriptor = {
    name: def.name,
    version: def.version,
    summary: def.summary,
    capabilities: def.capabilities ?? [],
    ops: Object.entries(def.operations).map(([name, op]) => ({
      name,
      summary: op.summary,
      input: ioSchema(op.input),
      output: ioSchema(op.output),
      examples: [],
    })),
    schemas: [],
    setup: undefined,
  };
  return { node: { describe: () => descriptor, invoke: invoker(def) } };
}
