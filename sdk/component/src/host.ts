/**
 * The runner's host imports (`greentic:host/*@0.1.0`) for worlds that include them (the runner's
 * 0.1.0 and 0.6.0 projects): typed, with `err(host-error)` thrown as a HostError.
 *
 *   import { state, secrets, http, log } from '@greentic/component-sdk/host';
 */
import * as hostHttp from 'greentic:host/http@0.1.0';
import { log as hostLog, type Level } from 'greentic:host/log@0.1.0';
import * as hostSecrets from 'greentic:host/secrets@0.1.0';
import * as hostState from 'greentic:host/state@0.1.0';
import { event as hostEvent } from 'greentic:host/telemetry@0.1.0';
import { HostError, hostCall } from './errors.js';
import { wireRequest, wrapResponse, type HttpRequest, type HttpResponse } from './http-types.js';

export type { HttpRequest, HttpResponse } from './http-types.js';

/** Key/value strings of the current session, committed with it. */
export const state = {
  get(key: string): string | undefined {
    return hostCall('greentic:host/state', () => hostState.get(key));
  },
  set(key: string, value: string): void {
    hostCall('greentic:host/state', () => hostState.set(key, value));
  },
  /** true when the key existed. */
  delete(key: string): boolean {
    return hostCall('greentic:host/state', () => hostState.delete(key));
  },
  getJson<T = unknown>(key: string): T | undefined {
    const raw = state.get(key);
    return raw === undefined ? undefined : (JSON.parse(raw) as T);
  },
  setJson(key: string, value: unknown): void {
    state.set(key, JSON.stringify(value));
  },
};

/** The binding's secrets (names outside its allow-list are refused with `host_denied`). */
export const secrets = {
  /** undefined: allowed, but not set for this tenant. */
  get(name: string): string | undefined {
    return hostCall('greentic:host/secrets', () => hostSecrets.get(name));
  },
  /** The secret's value; a HostError `host_not_found` when it is not set. */
  require(name: string): string {
    const v = secrets.get(name);
    if (v === undefined)
      throw new HostError('greentic:host/secrets', 'not-found', `secret '${name}' is not set`);
    return v;
  },
};

/** Outgoing HTTP to the tenant's allowed hosts; redirects are returned, not followed. */
export const http = {
  fetch(req: HttpRequest): HttpResponse {
    const wire = wireRequest(req);
    const res = hostCall('greentic:host/http', () => hostHttp.fetch({ ...wire, timeoutMs: req.timeoutMs }));
    return wrapResponse(req.url, res.status, res.headers, res.body);
  },
};

function line(level: Level): (message: string, fields?: Record<string, unknown>) => void {
  return (message, fields) =>
    hostLog(level, message, fields === undefined ? undefined : JSON.stringify(fields));
}

/** Structured log lines, written by the host with the tenant, component and trace ids. */
export const log = {
  trace: line('trace'),
  debug: line('debug'),
  info: line('info'),
  warn: line('warn'),
  error: line('error'),
};

/** A span event on the current call's span. */
export function event(name: string, attributes: Record<string, string> = {}): void {
  hostEvent(name, Object.entries(attributes));
}
