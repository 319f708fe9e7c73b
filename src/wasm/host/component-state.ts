/**
 * `greentic:host/state`: string key/values of one tenant's session, per component.
 *
 * Where it lives: inside the session's `data`, under `component_state.<component>.<key>`, i.e.
 * in the very object the flow executor hands back and the MessageProcessor commits (one
 * compare-and-set, under the session lock it already holds). So state written by a component
 * commits atomically with the flow state it belongs to, a redelivered message re-runs from the
 * same committed state, and no second key, lock or round trip is needed. The session key already
 * carries the tenant (`{tenant}:{provider}:{conversation}:{user}`) and the store is scoped per
 * tenant, so a component never reaches another tenant's or another session's state.
 *
 * Writes are copy-on-write: the nested objects may be shared with the record the store loaded,
 * which must not change before the commit.
 */
import type { HostAnswer } from '../pool/protocol.js';

export const STATE_ROOT = 'component_state';

export interface StateLimits {
  maxKeyLength: number;
  maxValueBytes: number;
  /** Sum of key and value sizes per component and session. */
  maxTotalBytes: number;
}

export const DEFAULT_STATE_LIMITS: StateLimits = {
  maxKeyLength: 256,
  maxValueBytes: 64 * 1024,
  maxTotalBytes: 256 * 1024,
};

const err = (code: string, message: string): HostAnswer => ({ tag: 'err', val: { code, message } });

type Bucket = Record<string, string>;

/** The component's bucket under `rootKey` of the session data (each state interface has its own root). */
function bucketOf(session: Record<string, unknown>, rootKey: string, component: string): Bucket | undefined {
  const root = session[rootKey];
  if (root === null || typeof root !== 'object' || Array.isArray(root)) return undefined;
  const bucket = (root as Record<string, unknown>)[component];
  if (bucket === null || typeof bucket !== 'object' || Array.isArray(bucket)) return undefined;
  return bucket as Bucket;
}

function writeBucket(
  session: Record<string, unknown>,
  rootKey: string,
  component: string,
  bucket: Bucket,
): void {
  const root = session[rootKey];
  const base = root !== null && typeof root === 'object' && !Array.isArray(root) ? root : {};
  session[rootKey] = { ...base, [component]: bucket };
}

function checkKey(key: unknown, limits: StateLimits): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'key must be a non-empty string';
  if (key.length > limits.maxKeyLength) return `key is longer than ${limits.maxKeyLength} characters`;
  if (key === '__proto__' || key === 'constructor' || key === 'prototype') return `key '${key}' is reserved`;
  return undefined;
}

function size(bucket: Bucket): number {
  let n = 0;
  for (const [k, v] of Object.entries(bucket)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

export function stateOp(
  session: Record<string, unknown> | undefined,
  component: string,
  op: 'get' | 'set' | 'delete',
  args: unknown[],
  limits: StateLimits = DEFAULT_STATE_LIMITS,
): HostAnswer {
  if (!session) return err('unavailable', 'this call has no session to keep state in');
  const [key, value] = args;
  const problem = checkKey(key, limits);
  if (problem) return err('invalid', problem);
  const k = key as string;
  const bucket = bucketOf(session, STATE_ROOT, component);
  switch (op) {
    case 'get': {
      const v = bucket && Object.hasOwn(bucket, k) ? bucket[k] : undefined;
      return { tag: 'ok', val: typeof v === 'string' ? v : undefined };
    }
    case 'set': {
      if (typeof value !== 'string') return err('invalid', 'value must be a string');
      if (Buffer.byteLength(value) > limits.maxValueBytes) {
        return err('too-large', `value exceeds ${limits.maxValueBytes} bytes`);
      }
      const next = { ...(bucket ?? {}), [k]: value };
      if (size(next) > limits.maxTotalBytes) {
        return err('too-large', `state of this component exceeds ${limits.maxTotalBytes} bytes per session`);
      }
      writeBucket(session, STATE_ROOT, component, next);
      return { tag: 'ok', val: undefined };
    }
    case 'delete': {
      if (!bucket || !Object.hasOwn(bucket, k)) return { tag: 'ok', val: false };
      const next = { ...bucket };
      delete next[k];
      writeBucket(session, STATE_ROOT, component, next);
      return { tag: 'ok', val: true };
    }
  }
}

// ---- greentic:state/state-store@1.0.0 --------------------------------------------------------

/**
 * Upstream's state-store keeps byte blobs. They live next to the `greentic:host/state` strings, in
 * the same session data, under `component_state_store.<component>.<key>` as base64, so they too
 * commit with the session and are scoped by the session key (tenant, provider, conversation,
 * user) and by component. The guest's own `ctx` argument plays no part in the scope.
 */
export const STATE_STORE_ROOT = 'component_state_store';

/** Upstream's code for a missing key (components test for it to tell "absent" from a failure). */
export const STATE_NOT_FOUND = 'not_found';

function blobSize(bucket: Bucket): number {
  let n = 0;
  for (const [k, v] of Object.entries(bucket)) n += Buffer.byteLength(k) + Math.floor((v.length * 3) / 4);
  return n;
}

/** `read` / `write` / `delete` of greentic:state/state-store on the call's session data. */
export function stateStoreOp(
  session: Record<string, unknown> | undefined,
  component: string,
  op: 'read' | 'write' | 'delete',
  args: unknown[],
  limits: StateLimits = DEFAULT_STATE_LIMITS,
): HostAnswer {
  if (!session) return err('unavailable', 'this call has no session to keep state in');
  const [key, value] = args;
  const problem = checkKey(key, limits);
  if (problem) return err('invalid', problem);
  const k = key as string;
  const bucket = bucketOf(session, STATE_STORE_ROOT, component);
  switch (op) {
    case 'read': {
      const v = bucket && Object.hasOwn(bucket, k) ? bucket[k] : undefined;
      if (typeof v !== 'string') return err(STATE_NOT_FOUND, `state key '${k}' not found`);
      return { tag: 'ok', val: new Uint8Array(Buffer.from(v, 'base64')) };
    }
    case 'write': {
      if (!(value instanceof Uint8Array)) return err('invalid', 'value must be bytes');
      if (value.byteLength > limits.maxValueBytes) {
        return err('too-large', `value exceeds ${limits.maxValueBytes} bytes`);
      }
      const next = { ...(bucket ?? {}), [k]: Buffer.from(value).toString('base64') };
      if (blobSize(next) > limits.maxTotalBytes) {
        return err('too-large', `state of this component exceeds ${limits.maxTotalBytes} bytes per session`);
      }
      writeBucket(session, STATE_STORE_ROOT, component, next);
      return { tag: 'ok', val: 'ok' };
    }
    case 'delete': {
      // Upstream acknowledges a delete whether or not the key existed.
      if (bucket && Object.hasOwn(bucket, k)) {
        const next = { ...bucket };
        delete next[k];
        writeBucket(session, STATE_STORE_ROOT, component, next);
      }
      return { tag: 'ok', val: 'ok' };
    }
  }
}
