/**
 * The upstream Greentic host interfaces (wit/upstream/) as import objects for a component instance
 * inside a worker: `greentic:state/state-store@1.0.0`, `greentic:http/http-client@1.0.0`,
 * `greentic:secrets-store/secrets-store@1.0.0` and `greentic:component/control@0.6.0`.
 *
 * Like the `greentic:host` imports they decide nothing: state, HTTP and secrets go through the
 * same bridge to the main thread (host-calls.ts), which answers from its own record of the call.
 * The `ctx` a guest may pass to state-store and http-client is never trusted: only the tenant it
 * names is forwarded, so the host can log a component that claims another one.
 * `control` is answered here: it only needs the running call's deadline.
 */
import type { HostAnswer } from '../pool/protocol.js';
import type { HostBridge } from './host-imports.js';

/** Function-carrying interfaces the runner provides, unversioned name -> version. */
export const UPSTREAM_HOST_INTERFACES: Readonly<Record<string, string>> = {
  'greentic:state/state-store': '1.0.0',
  'greentic:http/http-client': '1.0.0',
  'greentic:secrets-store/secrets-store': '1.0.0',
  'greentic:component/control': '0.6.0',
};

/**
 * Types-only interfaces upstream components import. jco needs no import object for them, but a
 * component may still list them, and the runner's "refuse unknown imports" check lets them through.
 */
export const UPSTREAM_TYPE_INTERFACES: Readonly<Record<string, string>> = {
  'greentic:types-core/core': '0.6.0',
  'greentic:interfaces-types/types': '0.1.0',
};

/** secrets-store's `secrets-error` cases. */
const SECRETS_ERRORS = new Set(['not-found', 'denied', 'invalid-key', 'internal']);

function knownVersion(table: Readonly<Record<string, string>>, importName: string): boolean {
  const at = importName.lastIndexOf('@');
  const name = at === -1 ? importName : importName.slice(0, at);
  const version = table[name];
  return version !== undefined && (at === -1 || importName.slice(at + 1) === version);
}

/** Whether the runner provides this upstream import (jco spells it with or without the version). */
export function isUpstreamImport(importName: string): boolean {
  return (
    knownVersion(UPSTREAM_HOST_INTERFACES, importName) || knownVersion(UPSTREAM_TYPE_INTERFACES, importName)
  );
}

/** What the running call lets `control` know. */
export interface CallControl {
  /** True once the running call's deadline has passed. */
  shouldCancel(): boolean;
}

/** The tenant a guest-supplied `tenant-ctx` names (for the host's log only). */
function claimedTenant(ctx: unknown): string | undefined {
  if (ctx === null || typeof ctx !== 'object') return undefined;
  const c = ctx as { tenantId?: unknown; tenant?: unknown };
  const tenant = c.tenantId ?? c.tenant;
  return typeof tenant === 'string' ? tenant : undefined;
}

function answered(answer: HostAnswer | undefined): HostAnswer {
  return answer ?? { tag: 'err', val: { code: 'internal', message: 'the host gave no answer' } };
}

/** Import objects for the upstream host interfaces, under both key spellings. */
export function upstreamImports(bridge: HostBridge, control: CallControl): Record<string, object> {
  const call = (op: Parameters<HostBridge>[0], ...args: unknown[]): HostAnswer => answered(bridge(op, args));
  const byInterface: Record<string, object> = {
    'greentic:state/state-store': {
      read: (key: string, ctx?: unknown) => call('state-store.read', key, claimedTenant(ctx)),
      write: (key: string, bytes: Uint8Array, ctx?: unknown) =>
        call('state-store.write', key, bytes, claimedTenant(ctx)),
      delete: (key: string, ctx?: unknown) => call('state-store.delete', key, claimedTenant(ctx)),
    },
    'greentic:http/http-client': {
      send: (request: unknown, ctx?: unknown) => call('http-client.send', request, claimedTenant(ctx)),
    },
    'greentic:secrets-store/secrets-store': {
      get: (key: string): HostAnswer => {
        const answer = call('secrets-store.get', key);
        if (answer.tag === 'ok') return answer;
        // secrets-store's error is an enum, not a record.
        const code = answer.val.code;
        return { tag: 'err', val: SECRETS_ERRORS.has(code) ? code : 'internal' } as unknown as HostAnswer;
      },
    },
    'greentic:component/control': {
      shouldCancel: (): boolean => control.shouldCancel(),
      yieldNow: (): void => undefined,
    },
  };
  const out: Record<string, object> = {};
  for (const [name, impl] of Object.entries(byInterface)) {
    out[name] = impl;
    out[`${name}@${UPSTREAM_HOST_INTERFACES[name]}`] = impl;
  }
  return out;
}
