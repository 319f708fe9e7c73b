/**
 * The few WebAssembly JS API members the runtime uses. The project's `lib` (ES2023, no DOM)
 * carries no `WebAssembly` typings, so they are declared here, locally, instead of globally.
 */

/** A compiled core module (`WebAssembly.Module`), opaque to the host. */
export type CoreModule = object;

interface WebAssemblyApi {
  compile(bytes: Uint8Array): Promise<CoreModule>;
  RuntimeError: abstract new (message?: string) => Error;
}

export const wasmApi = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** A core-wasm trap (`unreachable`, out-of-bounds access, stack exhaustion...). */
export function isWasmTrap(err: unknown): err is Error {
  return err instanceof wasmApi.RuntimeError;
}
