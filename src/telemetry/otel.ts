import os from 'node:os';
import {
  context,
  diag,
  DiagLogLevel,
  metrics,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Link,
  type SpanKind,
} from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import * as tracing from '@opentelemetry/sdk-trace-node';
import { secretRedactor } from '../secrets/secret-redactor.js';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';

/**
 * OpenTelemetry's tracer and meter providers for the whole process, started before Nest builds its container:
 * nestjs-otel's MetricService and every tracer read the global providers when they are created,
 * and the metrics API (unlike tracing) has no proxy that would pick up a provider registered later.
 *
 * - Traces: OTLP/HTTP to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
 *   `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; no endpoint, no tracer provider (spans stay
 *   no-ops). Protobuf by default, as the OTLP specification has it (half the bytes and half the
 *   CPU of JSON), JSON with `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL=http/json`. Sampling from `OTEL_TRACES_SAMPLER`/`_ARG` (default parent-based always-on).
 *   Propagation is W3C `traceparent` (and baggage) across the bus. Inside the process the active
 *   context follows async work through the standard AsyncLocalStorage context manager.
 * - Metrics: a Prometheus reader served by the runner's own HTTP port at `/metrics`
 *   (`GREENTIC_METRICS=false` turns it off).
 * - `OTEL_SDK_DISABLED=true` turns both off.
 */
export interface TelemetrySettings {
  disabled: boolean;
  serviceName: string;
  /** Full URL of the OTLP/HTTP traces endpoint, when tracing is on. */
  tracesUrl?: string;
  tracesProtocol: OtlpProtocol;
  metrics: boolean;
  sampler: string;
  samplerArg?: string;
  /** Put the message text on the consume span (off by default: traces must not carry user text). */
  traceMessageText: boolean;
}

export interface TelemetryHandle {
  settings: TelemetrySettings;
  /** A tracer provider is registered: spans record and propagate. Off, the wrappers skip them. */
  tracing: boolean;
  /** Present when metrics are on: serves the Prometheus text format. */
  prometheus?: PrometheusExporter;
  shutdown(): Promise<void>;
  forceFlush(): Promise<void>;
}

type Env = Record<string, string | number | undefined>;

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

function flag(v: string | number | undefined, fallback: boolean): boolean {
  if (v === undefined || v === '') return fallback;
  return /^(1|true|yes|on)$/i.test(String(v));
}

export function telemetrySettingsFrom(env: Env): TelemetrySettings {
  const str = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined || v === '' ? undefined : String(v);
  };
  const base = str('OTEL_EXPORTER_OTLP_ENDPOINT');
  const explicit = str('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const exporterOff = str('OTEL_TRACES_EXPORTER') === 'none';
  const tracesUrl = exporterOff
    ? undefined
    : (explicit ?? (base ? base.replace(/\/+$/, '') + '/v1/traces' : undefined));
  const protocol =
    str('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? str('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol))
    throw new Error(
      `OTEL_EXPORTER_OTLP_PROTOCOL: expected one of ${OTLP_PROTOCOLS.join(', ')}, got "${protocol}" (gRPC is not supported)`,
    );
  return {
    disabled: flag(env['OTEL_SDK_DISABLED'], false),
    tracesProtocol: protocol as OtlpProtocol,
    serviceName: str('OTEL_SERVICE_NAME') ?? 'greentic-runner',
    ...(tracesUrl ? { tracesUrl } : {}),
    metrics: flag(env['GREENTIC_METRICS'], true),
    sampler: str('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on',
    ...(str('OTEL_TRACES_SAMPLER_ARG') ? { samplerArg: str('OTEL_TRACES_SAMPLER_ARG') } : {}),
    traceMessageText: flag(env['GREENTIC_TRACE_MESSAGE_TEXT'], false),
  };
}

let current: TelemetryHandle | undefined;
let starting: Promise<TelemetryHandle> | undefined;

/** The running telemetry of this process, if started. */
export function telemetry(): TelemetryHandle | undefined {
  return current;
}

/**
 * Starts the SDK once per process; later calls answer the running handle (tests start several
 * apps in one process: the first one's settings hold, as they would for one deployment).
 */
export function startTelemetry(env: Env = process.env): Promise<TelemetryHandle> {
  starting ??= Promise.resolve().then(() => {
    current = start(telemetrySettingsFrom(env));
    return current;
  });
  return starting;
}

/** Flushes spans and metrics and stops the SDK (graceful shutdown). */
export async function shutdownTelemetry(): Promise<void> {
  const h = current;
  current = undefined;
  starting = undefined;
  await h?.shutdown();
}

function start(settings: TelemetrySettings): TelemetryHandle {
  if (settings.disabled || (!settings.tracesUrl && !settings.metrics)) {
    return { settings, tracing: false, shutdown: async () => {}, forceFlush: async () => {} };
  }
  // OTel's own diagnostics (export failures) go to stderr at warn; never span contents.
  diag.setLogger(
    {
      error: (m, ...a) => process.stderr.write(`otel: ${m} ${a.map(String).join(' ')}\n`),
      warn: (m, ...a) => process.stderr.write(`otel: ${m} ${a.map(String).join(' ')}\n`),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    DiagLogLevel.WARN,
  );
  const prometheus = settings.metrics
    ? new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true })
    : undefined;
  // Synchronous attributes only: async detectors (host id) would race the first export.
  const resource = resourceFromAttributes({
    'service.name': settings.serviceName,
    'host.name': os.hostname(),
    'process.pid': process.pid,
    'process.runtime.name': 'nodejs',
    'process.runtime.version': process.versions.node,
  });
  // Metrics are scraped at /metrics: a Prometheus reader and nothing else (no OTLP metrics push).
  // Off, no meter provider at all: instruments stay the API's no-ops.
  const meterProvider = prometheus ? new MeterProvider({ resource, readers: [prometheus] }) : undefined;
  if (meterProvider) metrics.setGlobalMeterProvider(meterProvider);
  if (!settings.tracesUrl) {
    // Metrics only: no tracer provider and no context manager, whose promise hooks cost every
    // request before Node 24 and buy nothing without traces.
    return {
      settings,
      tracing: false,
      ...(prometheus ? { prometheus } : {}),
      shutdown: async () => {
        await meterProvider?.shutdown();
        metrics.disable();
      },
      forceFlush: async () => {
        await meterProvider?.forceFlush();
      },
    };
  }
  const spanProcessors = [
    new tracing.BatchSpanProcessor(
      new RedactingSpanExporter(
        settings.tracesProtocol === 'http/json'
          ? new OTLPJsonTraceExporter({ url: settings.tracesUrl })
          : new OTLPProtoTraceExporter({ url: settings.tracesUrl }),
      ),
    ),
  ];
  // The SDK's own providers rather than its NodeSDK wrapper, which would load (and keep in the
  // heap) the OTLP gRPC, Zipkin and log exporters the runner never uses: 4.8 MB less heap once
  // the app module is imported (docs/operations.md, "How the spans are made").
  const tracerProvider = new tracing.NodeTracerProvider({
    resource,
    spanProcessors,
    sampler: samplerFor(settings),
  });
  tracerProvider.register({
    // The standard manager: the instrumented seams read the active span, nothing is passed by hand
    // (measured against a synchronous-only manager in docs/performance.md, "Tracing cost").
    // Propagation is the default, W3C trace context and baggage.
    contextManager: new AsyncLocalStorageContextManager(),
  });
  return {
    settings,
    tracing: true,
    ...(prometheus ? { prometheus } : {}),
    shutdown: async () => {
      await Promise.all([tracerProvider.shutdown(), meterProvider?.shutdown()]);
      // Back to the API's no-ops, so a later start in this process can register again.
      metrics.disable();
      trace.disable();
      context.disable();
      propagation.disable();
    },
    forceFlush: async () => {
      await Promise.all(spanProcessors.map((p) => p.forceFlush()));
      await prometheus?.forceFlush();
    },
  };
}

function samplerFor(s: TelemetrySettings): tracing.Sampler {
  const ratio = (): number => {
    const r = Number(s.samplerArg ?? '1');
    return Number.isFinite(r) && r >= 0 && r <= 1 ? r : 1;
  };
  switch (s.sampler) {
    case 'always_on':
      return new tracing.AlwaysOnSampler();
    case 'always_off':
      return new tracing.AlwaysOffSampler();
    case 'traceidratio':
      return new tracing.TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_off':
      return new tracing.ParentBasedSampler({ root: new tracing.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new tracing.ParentBasedSampler({ root: new tracing.TraceIdRatioBasedSampler(ratio()) });
    default:
      return new tracing.ParentBasedSampler({ root: new tracing.AlwaysOnSampler() });
  }
}

/**
 * Blanks every secret value the runner has read out of span names, attributes, events and status
 * before they leave the process, whatever code put them there.
 */
export class RedactingSpanExporter implements tracing.SpanExporter {
  constructor(private readonly inner: tracing.SpanExporter) {}

  export(spans: tracing.ReadableSpan[], done: (result: ExportResult) => void): void {
    if (secretRedactor.size === 0) {
      this.inner.export(spans, done);
      return;
    }
    this.inner.export(spans.map(redactSpan), done);
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function redactAttributes(a: Attributes): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(a)) {
    out[k] =
      typeof v === 'string'
        ? secretRedactor.redact(v)
        : Array.isArray(v)
          ? (v.map((x) => (typeof x === 'string' ? secretRedactor.redact(x) : x)) as typeof v)
          : v;
  }
  return out;
}

function redactSpan(span: tracing.ReadableSpan): tracing.ReadableSpan {
  const status = span.status.message
    ? { ...span.status, message: secretRedactor.redact(span.status.message) }
    : span.status;
  return {
    name: secretRedactor.redact(span.name),
    kind: span.kind,
    spanContext: () => span.spanContext(),
    ...(span.parentSpanContext ? { parentSpanContext: span.parentSpanContext } : {}),
    startTime: span.startTime,
    endTime: span.endTime,
    status,
    attributes: redactAttributes(span.attributes),
    links: span.links.map((l: Link) => ({
      ...l,
      ...(l.attributes ? { attributes: redactAttributes(l.attributes) } : {}),
    })),
    events: span.events.map((e) => ({
      ...e,
      name: secretRedactor.redact(e.name),
      ...(e.attributes ? { attributes: redactAttributes(e.attributes) } : {}),
    })),
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

export type { Context, SpanKind };
