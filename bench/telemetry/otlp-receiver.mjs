// A minimal OTLP/HTTP traces receiver for the benchmark, in its own process: answers every
// export with an empty response in its encoding and counts requests, bytes and spans without a
// full decode, so the receiver costs the machine as little as possible: JSON by its "spanId" keys,
// protobuf by walking the three nesting levels to the spans (request 1 → resource spans 2 → scope
// spans 2 → span). Prints LISTENING <url>; GET /stats answers the counts.
import http from 'node:http';

const stats = { requests: 0, bytes: 0, spans: 0 };
/** The length-delimited fields numbered `n` of a protobuf message, as [start, end) offsets. */
function lenFields(buf, start, end, n) {
  const out = [];
  let i = start;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++];
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return v;
      mul *= 128;
    }
  };
  while (i < end) {
    const key = varint();
    const type = key % 8;
    if (type === 0) varint();
    else if (type === 1) i += 8;
    else if (type === 5) i += 4;
    else if (type === 2) {
      const len = varint();
      if (Math.floor(key / 8) === n) out.push([i, i + len]);
      i += len;
    } else throw new Error(`unsupported protobuf wire type ${type}`);
  }
  return out;
}
function countProtoSpans(buf) {
  let n = 0;
  for (const [a, b] of lenFields(buf, 0, buf.length, 1))
    for (const [c, d] of lenFields(buf, a, b, 2)) n += lenFields(buf, c, d, 2).length;
  return n;
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    stats.requests++;
    stats.bytes += body.length;
    if (String(req.headers['content-type']).startsWith('application/x-protobuf')) {
      stats.spans += countProtoSpans(body);
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    } else {
      stats.spans += body.toString('utf8').split('"spanId"').length - 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    }
  });
});
server.listen(0, '127.0.0.1', () =>
  process.stdout.write(`LISTENING http://127.0.0.1:${server.address().port}\n`),
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
