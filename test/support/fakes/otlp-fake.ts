import { FakeServer, type FakeRequest, type FakeResponse } from './fake-server.js';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  events: { name: string; attributes: Record<string, string | number | boolean> }[];
  status: { code?: number; message?: string };
  serviceName: string;
}

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
};
interface KeyValue {
  key: string;
  value: AnyValue;
}

/**
 * An OTLP/HTTP receiver for traces, as the OpenTelemetry protocol specifies: `POST /v1/traces`
 * with an `ExportTraceServiceRequest` in JSON (`resourceSpans[].scopeSpans[].spans[]`, ids as hex
 * strings, attributes as `{key, value: {stringValue|intValue|...}}`), answered with an
 * `ExportTraceServiceResponse` (`{}`), or the same request in protobuf
 * (`application/x-protobuf`, the OTLP default), answered with an empty protobuf response.
 */
export class OtlpFake {
  readonly server: FakeServer;
  readonly spans: ReceivedSpan[] = [];

  constructor() {
    this.server = new FakeServer((r) => this.handle(r));
  }

  async start(): Promise<this> {
    await this.server.listen();
    return this;
  }

  /** The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  /** Spans grouped by trace id. */
  traces(): Map<string, ReceivedSpan[]> {
    const out = new Map<string, ReceivedSpan[]>();
    for (const s of this.spans) {
      const list = out.get(s.traceId) ?? [];
      list.push(s);
      out.set(s.traceId, list);
    }
    return out;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private handle(r: FakeRequest): FakeResponse {
    if (r.method !== 'POST' || r.path !== '/v1/traces')
      return { status: 404, body: { code: 5, message: 'not found' } };
    const type = String(r.headers['content-type'] ?? '');
    if (type.startsWith('application/x-protobuf')) {
      this.spans.push(...decodeProtobufRequest(r.body));
      // An empty ExportTraceServiceResponse is zero bytes on the wire.
      return { status: 200, headers: { 'content-type': 'application/x-protobuf' }, body: '' };
    }
    if (!type.startsWith('application/json'))
      return { status: 415, body: { code: 3, message: `unsupported content type ${type}` } };
    const body = JSON.parse(r.body.toString('utf8')) as {
      resourceSpans?: {
        resource?: { attributes?: KeyValue[] };
        scopeSpans?: { spans?: Record<string, unknown>[] }[];
      }[];
    };
    for (const rs of body.resourceSpans ?? []) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            traceId: hexId(s['traceId']),
            spanId: hexId(s['spanId']),
            parentSpanId: hexId(s['parentSpanId']),
            name: String(s['name']),
            kind: Number(s['kind'] ?? 0),
            attributes: attrs(s['attributes'] as KeyValue[] | undefined),
            events: ((s['events'] as { name: string; attributes?: KeyValue[] }[] | undefined) ?? []).map(
              (e) => ({ name: e.name, attributes: attrs(e.attributes) }),
            ),
            status: (s['status'] as ReceivedSpan['status'] | undefined) ?? {},
            serviceName: String(resource['service.name'] ?? ''),
          });
        }
      }
    }
    return { status: 200, body: {} };
  }
}

/**
 * Protobuf wire format, as much of it as `ExportTraceServiceRequest` uses: each field is a varint
 * key (number << 3 | wire type) then a varint, 8 bytes, length-delimited bytes, or 4 bytes.
 */
type Field = { n: number; varint?: bigint; bytes?: Buffer; fixed?: Buffer };

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new Error('truncated protobuf varint');
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const n = key >>> 3;
    switch (key & 7) {
      case 0:
        out.push({ n, varint: varint() });
        break;
      case 1:
        out.push({ n, fixed: buf.subarray(i, (i += 8)) });
        break;
      case 2: {
        const len = Number(varint());
        out.push({ n, bytes: buf.subarray(i, (i += len)) });
        break;
      }
      case 5:
        out.push({ n, fixed: buf.subarray(i, (i += 4)) });
        break;
      default:
        throw new Error(`unsupported protobuf wire type ${key & 7}`);
    }
  }
  return out;
}

const sub = (fs: Field[], n: number): Buffer[] =>
  fs.filter((f) => f.n === n && f.bytes).map((f) => f.bytes as Buffer);

/** KeyValue { 1 key, 2 AnyValue { 1 string, 2 bool, 3 int64, 4 double } }. */
function protoAttrs(list: Buffer[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list) {
    const f = fields(kv);
    const key = sub(f, 1)[0]?.toString('utf8') ?? '';
    const value = sub(f, 2)[0];
    if (!value) continue;
    for (const v of fields(value)) {
      if (v.n === 1 && v.bytes) out[key] = v.bytes.toString('utf8');
      else if (v.n === 2 && v.varint !== undefined) out[key] = v.varint !== 0n;
      else if (v.n === 3 && v.varint !== undefined) out[key] = Number(BigInt.asIntN(64, v.varint));
      else if (v.n === 4 && v.fixed) out[key] = v.fixed.readDoubleLE(0);
    }
  }
  return out;
}

/**
 * ExportTraceServiceRequest { 1 ResourceSpans { 1 Resource { 1 attributes }, 2 ScopeSpans { 2 Span } } },
 * Span { 1 trace_id, 2 span_id, 4 parent_span_id, 5 name, 6 kind, 9 attributes, 11 Event { 2 name,
 * 3 attributes }, 15 Status { 2 message, 3 code } }: the field numbers of opentelemetry-proto.
 */
function decodeProtobufRequest(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of sub(fields(body), 1)) {
    const rsf = fields(rs);
    const resourceBuf = sub(rsf, 1)[0];
    const resource = resourceBuf ? protoAttrs(sub(fields(resourceBuf), 1)) : {};
    for (const ss of sub(rsf, 2)) {
      for (const sp of sub(fields(ss), 2)) {
        const f = fields(sp);
        const statusBuf = sub(f, 15)[0];
        const status: ReceivedSpan['status'] = {};
        if (statusBuf) {
          for (const x of fields(statusBuf)) {
            if (x.n === 2 && x.bytes) status.message = x.bytes.toString('utf8');
            if (x.n === 3 && x.varint !== undefined) status.code = Number(x.varint);
          }
        }
        spans.push({
          traceId: sub(f, 1)[0]?.toString('hex') ?? '',
          spanId: sub(f, 2)[0]?.toString('hex') ?? '',
          parentSpanId: sub(f, 4)[0]?.toString('hex') ?? '',
          name: sub(f, 5)[0]?.toString('utf8') ?? '',
          kind: Number(f.find((x) => x.n === 6)?.varint ?? 0n),
          attributes: protoAttrs(sub(f, 9)),
          events: sub(f, 11).map((e) => {
            const ef = fields(e);
            return { name: sub(ef, 2)[0]?.toString('utf8') ?? '', attributes: protoAttrs(sub(ef, 3)) };
          }),
          status,
          serviceName: String(resource['service.name'] ?? ''),
        });
      }
    }
  }
  return spans;
}

function attrs(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) {
    const v = kv.value;
    if (v.stringValue !== undefined) out[kv.key] = v.stringValue;
    else if (v.intValue !== undefined) out[kv.key] = Number(v.intValue);
    else if (v.boolValue !== undefined) out[kv.key] = v.boolValue;
    else if (v.doubleValue !== undefined) out[kv.key] = v.doubleValue;
  }
  return out;
}

/** OTLP/JSON ids are hex; tolerate base64 from encoders that use protobuf JSON defaults. */
function hexId(v: unknown): string {
  if (typeof v !== 'string' || v === '') return '';
  return /^[0-9a-f]+$/i.test(v) ? v.toLowerCase() : Buffer.from(v, 'base64').toString('hex');
}
