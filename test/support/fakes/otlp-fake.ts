import protobuf from 'protobufjs';
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
    const protobuf = type.startsWith('application/x-protobuf');
    if (!protobuf && !type.startsWith('application/json'))
      return { status: 415, body: { code: 3, message: `unsupported content type ${type}` } };
    const body = (protobuf ? decodeProtobuf(r.body) : JSON.parse(r.body.toString('utf8'))) as ExportRequest;
    this.collect(body);
    // An empty ExportTraceServiceResponse: zero bytes in protobuf, `{}` in JSON.
    return protobuf
      ? { status: 200, headers: { 'content-type': 'application/x-protobuf' }, body: '' }
      : { status: 200, body: {} };
  }

  private collect(body: ExportRequest): void {
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
  }
}

type ExportRequest = {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: { spans?: Record<string, unknown>[] }[];
  }[];
};

/**
 * The part of opentelemetry-proto's trace schema the assertions read (field numbers as in
 * `opentelemetry/proto/{common,resource,trace}/v1/*.proto`); other fields are skipped on decode.
 */
const OTLP_TRACE_PROTO = `
syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  repeated KeyValue attributes = 9; repeated Event events = 11; Status status = 15;
}
message ScopeSpans { repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;
const exportRequest = protobuf.parse(OTLP_TRACE_PROTO).root.lookupType('ExportTraceServiceRequest');

/**
 * A protobuf request as the OTLP/JSON mapping has it: camelCase fields, 64-bit ints as strings,
 * ids as base64 (which `hexId` reads), so both encodings go through the same code.
 */
function decodeProtobuf(body: Buffer): unknown {
  return exportRequest.toObject(exportRequest.decode(body), { longs: String, bytes: String });
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
