import { describe, expect, it } from 'vitest';
import { telemetrySettingsFrom } from './otel.js';

describe('telemetrySettingsFrom', () => {
  it('exports OTLP protobuf to <endpoint>/v1/traces by default, as the OTLP specification has it', () => {
    const s = telemetrySettingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' });
    expect(s.tracesUrl).toBe('http://collector:4318/v1/traces');
    expect(s.tracesProtocol).toBe('http/protobuf');
  });

  it('takes the traces-specific protocol over the general one', () => {
    expect(telemetrySettingsFrom({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).tracesProtocol).toBe(
      'http/json',
    );
    expect(
      telemetrySettingsFrom({
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
      }).tracesProtocol,
    ).toBe('http/protobuf');
  });

  it('refuses a protocol it cannot export, naming the variable and the choices', () => {
    expect(() => telemetrySettingsFrom({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      'OTEL_EXPORTER_OTLP_PROTOCOL: expected one of http/protobuf, http/json, got "grpc" (gRPC is not supported)',
    );
  });

  it('has no traces URL without an endpoint, and none with OTEL_TRACES_EXPORTER=none', () => {
    expect(telemetrySettingsFrom({}).tracesUrl).toBeUndefined();
    expect(
      telemetrySettingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })
        .tracesUrl,
    ).toBeUndefined();
  });
});
