// A minimal OTLP/HTTP traces receiver for the benchmark, in its own process: answers every
// export with 200 `{}` and counts requests, bytes and spans (by their "spanId" keys, without a
// full JSON parse, so the receiver costs the machine as little as possible). Prints LISTENING <url>;
// GET /stats answers the counts.
import http from 'node:http';

const stats = { requests: 0, bytes: 0, spans: 0 };
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    stats.requests++;
    stats.bytes += body.length;
    stats.spans += body.split('"spanId"').length - 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
server.listen(0, '127.0.0.1', () =>
  process.stdout.write(`LISTENING http://127.0.0.1:${server.address().port}\n`),
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
