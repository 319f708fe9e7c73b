// Local stand-ins for the egress targets, in their own process: Slack's chat.postMessage (the
// documented `{ ok, channel, ts, message }`) and the generic webhook's callback. GET /count
// answers how many deliveries each received. Prints LISTENING <url>.
import http from 'node:http';

const counts = { slack: 0, callback: 0, refused: 0 };
let seq = 0;
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/count') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(counts));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    if (req.url === '/api/chat.postMessage') {
      const args = new URLSearchParams(body);
      if (req.headers.authorization !== 'Bearer xoxb-bench' || !args.get('channel')) {
        counts.refused++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":false,"error":"invalid_auth"}');
        return;
      }
      counts.slack++;
      const ts = `1503435956.${String(++seq).padStart(6, '0')}`;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ok: true,
          channel: args.get('channel'),
          ts,
          message: { type: 'message', text: args.get('text'), ts },
        }),
      );
      return;
    }
    if (req.url === '/callback') {
      counts.callback++;
      res.writeHead(204);
      res.end();
      return;
    }
    res.writeHead(404);
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () =>
  process.stdout.write(`LISTENING http://127.0.0.1:${server.address().port}\n`),
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
