// Baseline: a bare node:http server answering the same JSON as the runner's sync webhook.
// Run as a script it serves; `serveBare(around)` is for servers that add one thing per request
// (bench/telemetry/sdk-floor-server.mjs): `around(body, req)` runs before the answer and may return
// a function called after it.
import http from 'node:http';
import { fileURLToPath } from 'node:url';

export function serveBare(around) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end();
        return;
      }
      const after = around?.(body, req);
      const out = JSON.stringify({
        messageId: 'm',
        sessionKey: `bench:webhook:${body.userId}:${body.userId}`,
        status: 'completed',
        replies: [{ text: `Weather for ${body.text}: sunny` }],
      });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(out),
      });
      res.end(out);
      after?.();
    });
  });
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(`LISTENING http://127.0.0.1:${server.address().port}\n`),
  );
  return server;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = serveBare();
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
