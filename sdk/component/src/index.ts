/**
 * @greentic/component-sdk: write a Greentic component's logic only.
 *
 *   '@greentic/component-sdk'                 node helpers, types, errors, CBOR (no host imports)
 *   '@greentic/component-sdk/host'            the runner's greentic:host imports
 *   '@greentic/component-sdk/upstream-host'   upstream's state-store, secrets-store, http-client
 *
 * `greentic-component build` bundles the component with the SDK (rolldown) before componentize-js.
 */
export { CborEncoder, CborError, decodeCbor, encodeCbor } from './cbor.js';
export {
  HostError,
  InvalidInputError,
  NodeError,
  UnknownOperationError,
  hostCall,
  type NodeErrorOptions,
} from './errors.js';
export { defineExecute, type Message, type Outcome } from './execute.js';
export {
  defineNode,
  defineUpstreamNode,
  type CallContext,
  type InvocationEnvelope,
  type InvocationResult,
  type IoSchema,
  type JsonSchema,
  type NodeDefinition,
  type NodeErrorRecord,
  type Operation,
  type SchemaSource,
  type TenantCtx,
  type UpstreamDescriptor,
} from './node.js';

/** The SDK's version (part of the component build cache key). */
export const SDK_VERSION = '0.1.0';
