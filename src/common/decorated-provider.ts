const LIFECYCLE_HOOKS = [
  'onModuleInit',
  'onApplicationBootstrap',
  'onModuleDestroy',
  'beforeApplicationShutdown',
  'onApplicationShutdown',
] as const;

/**
 * `decorate(inner)` as a provider's value, still answering Nest's lifecycle hooks of `inner`
 * (Nest calls them on the provided object): a decorator wraps a seam's interface, not the
 * implementation's start-up and shut-down.
 */
export function decorated<T extends object>(inner: T, decorate: ((inner: T) => T) | undefined): T {
  if (!decorate) return inner;
  const outer = decorate(inner);
  if (outer === inner) return outer;
  const hooks = outer as Record<string, unknown>;
  for (const hook of LIFECYCLE_HOOKS) {
    const fn = (inner as Record<string, unknown>)[hook];
    if (typeof fn === 'function' && hooks[hook] === undefined)
      hooks[hook] = (...args: unknown[]) => (fn as (...a: unknown[]) => unknown).apply(inner, args);
  }
  return outer;
}
