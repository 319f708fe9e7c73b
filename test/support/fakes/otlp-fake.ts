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
 * `ExportTraceServiceResponse` (`{}`). Protobuf bodies are refused with 415, which is what a
 * JSON-only receiver answers.
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
