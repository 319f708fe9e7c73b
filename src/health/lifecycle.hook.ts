import type { onRequestHookHandler } from 'fastify';
import type { LifecycleService } from './lifecycle.service.js';

/** Operator routes: answered while draining, and not work to wait for. */
const OPERATIONS = /^\/(health|metrics|admin|docs|openapi\.(json|yaml))(\/|$|\?)/;

const SHUTTING_DOWN = JSON.stringify({
  error: { code: 'shutting_down', message: 'the runner is shutting down; retry on another replica' },
});

/**
 * Counts requests in flight, and refuses new ones (but probes and admin) while the runner drains.
 * Every route: webhooks and the other ingress doors (Direct Line...) alike.
 */
export function lifecycleHook(lifecycle: LifecycleService): onRequestHookHandler {
  return (req, reply, done) => {
    if (OPERATIONS.test(req.url)) return done();
    if (lifecycle.draining) {
      void reply
        .code(503)
        .header('retry-after', '5')
        .header('connection', 'close')
        .type('application/json; charset=utf-8')
        .send(SHUTTING_DOWN);
      return;
    }
    lifecycle.httpInFlight++;
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      lifecycle.httpInFlight--;
    };
    reply.raw.once('finish', leave);
    reply.raw.once('close', leave);
    done();
  };
}
