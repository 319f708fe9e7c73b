// The host imports as componentize-js exposes them to a component's JavaScript: an import that
// returns `result<T, E>` returns T and throws an error whose `payload` is E; `option<T>` is
// `T | undefined`; `u64` is bigint.

declare module 'greentic:host/state@0.1.0' {
  export function get(key: string): string | undefined;
  export function set(key: string, value: string): void;
  function del(key: string): boolean;
  export { del as delete };
}

declare module 'greentic:host/secrets@0.1.0' {
  export function get(name: string): string | undefined;
}

declare module 'greentic:host/http@0.1.0' {
  export interface Request {
    method: string;
    url: string;
    headers: Array<[string, string]>;
    body: Uint8Array | undefined;
    timeoutMs: number | undefined;
  }
  export interface Response {
    status: number;
    headers: Array<[string, string]>;
    body: Uint8Array;
  }
  export function fetch(req: Request): Response;
}

declare module 'greentic:host/log@0.1.0' {
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  export function log(level: Level, message: string, fields: string | undefined): void;
}

declare module 'greentic:host/telemetry@0.1.0' {
  export function event(name: string, attributes: Array<[string, string]>): void;
}

declare module 'greentic:state/state-store@1.0.0' {
  export function read(key: string, ctx: undefined): Uint8Array;
  export function write(key: string, bytes: Uint8Array, ctx: undefined): 'ok';
  function del(key: string, ctx: undefined): 'ok';
  export { del as delete };
}

declare module 'greentic:secrets-store/secrets-store@1.0.0' {
  export function get(key: string): Uint8Array | undefined;
}

declare module 'greentic:http/http-client@1.0.0' {
  export interface Request {
    method: string;
    url: string;
    headers: Array<[string, string]>;
    body: Uint8Array | undefined;
  }
  export interface Response {
    status: number;
    headers: Array<[string, string]>;
    body: Uint8Array | undefined;
  }
  export function send(req: Request, ctx: undefined): Response;
}
