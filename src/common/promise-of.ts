/**
 * Calls `fn` and hands back its own promise, a synchronous throw turned into a rejection. For the
 * seams that put one then() on a callee's promise instead of wrapping it in an async function:
 * the wrapper's extra promises are each a hook call when tracing is on (docs/performance.md).
 */
export function promiseOf<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (e) {
    return Promise.reject(e as Error);
  }
}
