/**
 * The `greentic:host` import objects a component instance gets inside a worker. They decide
 * nothing: every call is forwarded to the main thread (`bridge`), which knows the calling tenant
 * and binding and answers `ok` or `err(host-error)`. Answers are jco's tagged results, so a
 * refusal reaches the guest as `err`, never as a trap.
 */
import type { HostAnswer, HostOp } from '../pool/protocol.js';

export const HOST_PACKAGE = 'greentic:host';
export const HOST_VERSION = '0.1.0';
export const HOST_INTERFACES = ['types', 'secrets', 'state', 'http', 'log', 'telemetry'] as const;

/** Forwards one host call; returns the answer, or undefined for fire-and-forget ops. */
export type HostBridge = (op: HostOp, args: unknown[]) => HostAnswer | undefined;

/** jco keys an import by `pkg/iface` when unambiguous, else by `pkg/iface@version`: accept both. */
export function hostInterfaceOf(importName: string): string | undefined {
  const m = /^greentic:host\/([a-z-]+)(?:@(.+))?$/.exec(importName);
  if (!m || (m[2] !== undefined && m[2] !== HOST_VERSION)) return undefined;
  return (HOST_INTERFACES as readonly string[]).includes(m[1]!) ? m[1] : undefined;
}

export function isHostImport(importName: string): boolean {
  return hostInterfaceOf(importName) !== undefined;
}

function answered(answer: HostAnswer | undefined): HostAnswer {
  return answer ?? { tag: 'err', val: { code: 'failed', message: 'the host gave no answer' } };
}

/** Import objects for every host interface, under both key spellings. */
export function hostImports(bridge: HostBridge): Record<string, object> {
  const call = (op: HostOp, ...args: unknown[]): HostAnswer => answered(bridge(op, args));
  const byInterface: Record<(typeof HOST_INTERFACES)[number], object> = {
    types: {},
    secrets: { get: (name: string) => call('secrets.get', name) },
    state: {
      get: (key: string) => call('state.get', key),
      set: (key: string, value: string) => call('state.set', key, value),
      delete: (key: string) => call('state.delete', key),
    },
    http: { fetch: (request: unknown) => call('http.fetch', request) },
    log: {
      log: (level: string, message: string, fields?: string): void => {
        bridge('log', [level, message, fields]);
      },
    },
    telemetry: {
      event: (name: string, attributes: Array<[string, string]>): void => {
        bridge('telemetry.event', [name, attributes]);
      },
    },
  };
  const out: Record<string, object> = {};
  for (const [iface, impl] of Object.entries(byInterface)) {
    out[`${HOST_PACKAGE}/${iface}`] = impl;
    out[`${HOST_PACKAGE}/${iface}@${HOST_VERSION}`] = impl;
  }
  return out;
}
