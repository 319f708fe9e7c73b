// The tracing floor inside a runner's process: a runner on the bundle given as argv[2] (started,
// warmed with its own traffic for argv[3] seconds, then left idle) and, on another port, the
// floor's two servers: `/bare` answers as bench/webhook/bare-server.mjs does, any other path also
// records the runner's spans for the request as sdk-floor-server.mjs does, through the tracer
// provider the runner registered.
// The same code as the floor, in a process the size of the runner's: what the SDK costs there is
// the least the runner's own tracing can cost. Prints LISTENING <url> (the floor's port).
import { startApp } from '../../dist/bootstrap.js';
import { load } from '../lib/harness.mjs';
import { webhookBody, WEBHOOK_ROUTE } from '../lib/webhook-bundle.mjs';
import { serveBare } from '../webhook/bare-server.mjs';
import { tracedAnswer } from './sdk-floor-server.mjs';

const { app, url } = await startApp({
  config: { PORT: 0, GREENTIC_BUNDLE: process.argv[2], LOG_LEVEL: process.env.LOG_LEVEL ?? 'error' },
});
// The runner's own path runs first, as it does in a runner serving traffic (its JIT state and heap),
// for as long as run.mjs warms every server (argv[3], seconds; 2 when run alone).
const warmupS = Number(process.argv[3] ?? 2);
await load({ url: url + WEBHOOK_ROUTE, connections: 20, duration: warmupS, warmup: 0, body: webhookBody });
const server = serveBare((body, req) => (req.url.startsWith('/bare') ? undefined : tracedAnswer(body, req)));
process.on('SIGTERM', () => server.close(() => app.close().then(() => process.exit(0))));
