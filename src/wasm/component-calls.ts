/**
 * Marshalling of one call into a jco component instance, per world, and the mapping of what
 * comes back (outcome, invocation-result, node-error, trap) onto the runner's errors.
 * Field names are jco's: records in camelCase, u64 as BigInt, option as value|undefined, and a
 * `result<_, node-error>` export throws jco's ComponentError whose `payload` is the node-error.
 * Plain functions over plain data, so a worker thread can run them unchanged.
 */
import { ComponentError, ComponentLoadError, ComponentTrapError, errorText } from '../common/errors.js';
import { tenantKey, type TenantCtx } from '../core/tenant-ctx.js';
import { decodeCbor, encodeCbor } from './cbor.js';
import {
  WORLD_V01,
  type ComponentCall,
  type ComponentOperation,
  type PreparedComponent,
  type ResolvedComponentCall,
} from '../core/component-runtime.js';
import type { ComponentExports } from './transpile-cache.js';
import { V01_EXECUTE, V06_DESCRIPTOR, V06_NODE } from './world-detect.js';

/** Deadline handed to 0.6 components when the call names none (ms). */
export const DEFAULT_DEADLINE_MS = 30_000;

// ---- greentic:component@0.1.0 ------------------------------------------------------------

export interface V01Message {
  id: string;
  content: string;
  sender: string;
  timestamp: bigint;
}

export interface V01Outcome {
  success: boolean;
  data?: string;
  error?: string;
}

interface V01Exports {
  execute(input: V01Message): V01Outcome;
}

// ---- greentic:component@0.6.0 ------------------------------------------------------------

export interface V06TenantCtx {
  tenantId: string;
  teamId?: string;
  userId?: string;
  envId: string;
  traceId: string;
  correlationId: string;
  deadlineMs: bigint;
  attempt: number;
  idempotencyKey?: string;
  i18nId: string;
}

export interface V06InvocationEnvelope {
  ctx: V06TenantCtx;
  flowId: string;
  stepId: string;
  componentId: string;
  attempt: number;
  payloadCbor: Uint8Array;
  metadataCbor?: Uint8Array;
}

export interface V06InvocationResult {
  ok: boolean;
  outputCbor: Uint8Array;
  outputMetadataCbor?: Uint8Array;
}

export interface V06NodeError {
  code: string;
  message: string;
  retryable: boolean;
  backoffMs?: bigint;
  details?: Uint8Array;
}

interface V06Node {
  invoke(op: string, envelope: V06InvocationEnvelope): V06InvocationResult;
  /** Upstream's node (wit/upstream/component-0.6.0); the runner's own 0.6 world has none. */
  describe?(): UpstreamDescriptor;
}

/** Upstream `node.describe()`'s component-descriptor, as jco lifts it (the fields the runner reads). */
interface UpstreamDescriptor {
  name: string;
  version: string;
  summary?: string;
  ops: Array<{ name: string; summary?: string; input?: UpstreamIoSchema; output?: UpstreamIoSchema }>;
}

interface UpstreamIoSchema {
  schema: { tag: string; val: unknown };
  contentType: string;
}

interface V06Descriptor {
  describe(): Uint8Array;
}

// ---- calls --------------------------------------------------------------------------------

/**
 * Runs one call on an instance of `call.component`. Throws the Component*Error classes; a
 * ComponentTrapError means the instance is poisoned (jco refuses further calls into it) and must
 * be dropped.
 */
export function callComponent(
  instance: ComponentExports,
  tenant: TenantCtx,
  call: ResolvedComponentCall,
): unknown {
  return call.component.world === WORLD_V01
    ? callV01(instance, tenant, call)
    : callV06(instance, tenant, call);
}

export function v01Message(call: ComponentCall): V01Message {
  const { ctx, input } = call;
  return {
    id: String(ctx.messageId),
    content: input === undefined ? String(ctx.text ?? '') : jsonText(input, call),
    sender: String(ctx.userId),
    timestamp: BigInt(Date.now()),
  };
}

function callV01(instance: ComponentExports, tenant: TenantCtx, call: ResolvedComponentCall): unknown {
  const exports = instance as unknown as V01Exports;
  const message = v01Message(call);
  let outcome: V01Outcome;
  try {
    outcome = exports[V01_EXECUTE](message);
  } catch (err) {
    throw trapError(err, tenant, call.component, call.operation);
  }
  if (!outcome.success) {
    throw new ComponentError(
      'component_failed',
      `component '${call.component.name}' failed: ${outcome.error ?? 'no error message'}`,
      502,
      { component: call.component.name, operation: call.operation, error: outcome.error },
    );
  }
  if (outcome.data === undefined) return undefined;
  return parseData(outcome.data);
}

/** A JSON value can only start like this: plain text skips JSON.parse (docs/performance.md). */
const JSON_START = /^\s*(?:[{["\d-]|true\b|false\b|null\b)/;

/** 0.1 `data`: JSON when it is JSON, else the text itself. */
export function parseData(data: string): unknown {
  if (!JSON_START.test(data)) return data;
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return data;
  }
}

export function v06Envelope(tenant: TenantCtx, call: ComponentCall, now = Date.now()): V06InvocationEnvelope {
  const { ctx } = call;
  const attempt = ctx.attempt ?? 0;
  return {
    ctx: {
      tenantId: tenant.tenantId,
      teamId: tenant.teamId,
      userId: ctx.userId,
      envId: tenant.envId,
      traceId: ctx.traceId ?? '',
      correlationId: ctx.messageId,
      deadlineMs: BigInt(now + (call.deadlineMs ?? DEFAULT_DEADLINE_MS)),
      attempt,
      idempotencyKey: `${ctx.flowId}/${ctx.nodeId}/${ctx.messageId}`,
      i18nId: ctx.locale || 'en',
    },
    flowId: ctx.flowId,
    stepId: ctx.nodeId,
    componentId: call.component.name,
    attempt,
    payloadCbor: encodeCbor(call.input),
    metadataCbor: undefined,
  };
}

function callV06(instance: ComponentExports, tenant: TenantCtx, call: ResolvedComponentCall): unknown {
  const node = instance[V06_NODE] as V06Node;
  let envelope: V06InvocationEnvelope;
  try {
    envelope = v06Envelope(tenant, call);
  } catch (err) {
    throw new ComponentError(
      'invalid_input',
      `input of '${call.component.name}' is not encodable: ${errorText(err)}`,
      400,
    );
  }
  let result: V06InvocationResult;
  try {
    result = node.invoke(call.operation, envelope);
  } catch (err) {
    const nodeError = jcoResultError(err);
    if (nodeError) throw fromNodeError(nodeError as V06NodeError, call);
    throw trapError(err, tenant, call.component, call.operation);
  }
  let output: unknown;
  try {
    output = result.outputCbor.length ? decodeCbor(result.outputCbor) : undefined;
  } catch (err) {
    throw new ComponentError(
      'component_output_invalid',
      `component '${call.component.name}' operation '${call.operation}' returned invalid CBOR: ${errorText(err)}`,
      502,
      { component: call.component.name, operation: call.operation },
    );
  }
  if (!result.ok) {
    throw new ComponentError(
      'component_failed',
      `component '${call.component.name}' operation '${call.operation}' returned ok=false`,
      502,
      { component: call.component.name, operation: call.operation, output },
    );
  }
  return output;
}

/**
 * The operation a call runs: the one it names, else the component manifest's `default_operation`,
 * else the component's only operation (`execute` for 0.1). Never a made-up one.
 */
export function callOperation(call: ComponentCall): string {
  if (call.operation) return call.operation;
  const { component } = call;
  if (component.defaultOperation) return component.defaultOperation;
  if (component.world === WORLD_V01) return V01_EXECUTE;
  if (component.operations.length === 1) return component.operations[0]!.name;
  const declared = component.operations.map((o) => o.name);
  throw new ComponentError(
    'operation_required',
    `component '${component.name}' has no default operation` +
      (declared.length ? ` and declares several (${declared.join(', ')}): name one` : ': name one'),
    400,
    { component: component.name, operations: declared },
  );
}

/**
 * 0.6 operations: upstream's `node.describe()` (a record) when the node has it, else the runner's
 * own `component-descriptor.describe()` (CBOR `{ operations: [{ name, input_schema?, output_schema? }] }`).
 */
export function describeOperations(instance: ComponentExports, componentName: string): ComponentOperation[] {
  const node = instance[V06_NODE] as V06Node | undefined;
  if (node && typeof node.describe === 'function') return describeUpstream(node, componentName);
  const descriptor = instance[V06_DESCRIPTOR] as V06Descriptor | undefined;
  if (!descriptor) return [];
  let doc: unknown;
  try {
    doc = decodeCbor(descriptor.describe());
  } catch (err) {
    throw new ComponentLoadError(`component '${componentName}' describe() failed: ${errorText(err)}`, {
      component: componentName,
    });
  }
  const ops = (doc as { operations?: unknown } | null)?.operations;
  if (!Array.isArray(ops)) {
    throw new ComponentLoadError(`component '${componentName}' describe() has no 'operations' list`, {
      component: componentName,
    });
  }
  return ops.map((raw, i) => {
    const op = { ...((raw ?? {}) as Record<string, unknown>) };
    // Upstream's older CBOR descriptor (ComponentDescribe) names an operation `id`.
    if (op.name === undefined && typeof op.id === 'string') op.name = op.id;
    if (typeof op.name !== 'string' || !op.name) {
      throw new ComponentLoadError(`component '${componentName}' describe(): operation #${i} has no name`, {
        component: componentName,
      });
    }
    const operation: ComponentOperation = { name: op.name };
    const input = op.input_schema ?? op.inputSchema;
    const output = op.output_schema ?? op.outputSchema;
    if (isRecord(input)) operation.inputSchema = input;
    if (isRecord(output)) operation.outputSchema = output;
    return operation;
  });
}

function describeUpstream(node: V06Node, componentName: string): ComponentOperation[] {
  let descriptor: UpstreamDescriptor;
  try {
    descriptor = node.describe!();
  } catch (err) {
    throw new ComponentLoadError(`component '${componentName}' node.describe() failed: ${errorText(err)}`, {
      component: componentName,
    });
  }
  const ops = Array.isArray(descriptor?.ops) ? descriptor.ops : [];
  return ops.map((op, i) => {
    if (typeof op?.name !== 'string' || !op.name) {
      throw new ComponentLoadError(`component '${componentName}' node.describe(): op #${i} has no name`, {
        component: componentName,
      });
    }
    const operation: ComponentOperation = { name: op.name };
    if (typeof op.summary === 'string' && op.summary) operation.summary = op.summary;
    const input = inlineSchema(op.input);
    const output = inlineSchema(op.output);
    if (input) operation.inputSchema = input;
    if (output) operation.outputSchema = output;
    return operation;
  });
}

/** An io-schema's schema when it is inline CBOR holding an object (ids and refs are not fetched). */
function inlineSchema(io: UpstreamIoSchema | undefined): Record<string, unknown> | undefined {
  if (io?.schema?.tag !== 'inline-cbor' || !(io.schema.val instanceof Uint8Array)) return undefined;
  try {
    const schema = decodeCbor(io.schema.val);
    return isRecord(schema) ? schema : undefined;
  } catch {
    return undefined;
  }
}

// ---- errors -------------------------------------------------------------------------------

/** The `err` payload of a jco-lifted `result`, which jco throws as its own ComponentError. */
function jcoResultError(err: unknown): unknown {
  if (err instanceof Error && err.constructor.name === 'ComponentError' && Object.hasOwn(err, 'payload')) {
    return (err as Error & { payload: unknown }).payload;
  }
  return undefined;
}

function fromNodeError(nodeError: V06NodeError, call: ResolvedComponentCall): ComponentError {
  const code = typeof nodeError.code === 'string' && nodeError.code ? nodeError.code : 'component_failed';
  return new ComponentError(code, nodeError.message || `component '${call.component.name}' failed`, 502, {
    component: call.component.name,
    operation: call.operation,
    retryable: nodeError.retryable === true,
    backoffMs: nodeError.backoffMs === undefined ? undefined : Number(nodeError.backoffMs),
    details: nodeError.details === undefined ? undefined : decodeDetails(nodeError.details),
  });
}

function decodeDetails(bytes: Uint8Array): unknown {
  try {
    return decodeCbor(bytes);
  } catch {
    return Buffer.from(bytes).toString('base64');
  }
}

/** A trap (or any failure inside the instance): the instance is poisoned and must be dropped. */
export function trapError(
  err: unknown,
  tenant: TenantCtx,
  component: Pick<PreparedComponent, 'name' | 'version' | 'digest'>,
  operation: string,
): ComponentTrapError {
  if (err instanceof ComponentTrapError) return err;
  const tenantId = tenantKey(tenant);
  return new ComponentTrapError(
    `component '${component.name}' trapped in '${operation}' for tenant '${tenantId}': ${errorText(err)}`,
    {
      tenant: tenantId,
      component: component.name,
      version: component.version,
      operation,
      cause: errorText(err),
    },
  );
}

function jsonText(input: unknown, call: ComponentCall): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(input);
  } catch (err) {
    throw new ComponentError(
      'invalid_input',
      `input of '${call.component.name}' is not JSON: ${errorText(err)}`,
      400,
    );
  }
  return text ?? '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
