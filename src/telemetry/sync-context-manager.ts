import { ROOT_CONTEXT, type Context, type ContextManager } from '@opentelemetry/api';

/**
 * The active OpenTelemetry context for synchronous code only: `with(ctx, fn)` makes `ctx` active
 * while `fn` runs and restores the previous one when it returns, and nothing follows a promise.
 *
 * The runner passes trace context explicitly across its await points (the webhook span to the
 * ingress publish, the message span to nodes, components, session commits and the egress publish,
 * the way MessageCtx travels), so it does not need the SDK's default AsyncLocalStorage manager,
 * whose promise hooks on Node 20 charge every promise in the process (Fastify's, Nest's, the
 * bus's) whether or not it belongs to a trace: about a tenth of a traced request's CPU.
 */
export class SyncContextManager implements ContextManager {
  private current: Context = ROOT_CONTEXT;

  active(): Context {
    return this.current;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const previous = this.current;
    this.current = context;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.current = previous;
    }
  }

  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const fn = target as unknown as (...args: unknown[]) => unknown;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const manager = this;
    return function (this: unknown, ...args: unknown[]) {
      return manager.with(context, () => fn.apply(this, args));
    } as unknown as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.current = ROOT_CONTEXT;
    return this;
  }
}
