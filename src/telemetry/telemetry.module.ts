import { Global, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { OpenTelemetryModule } from 'nestjs-otel';
import { RunnerConfig } from '../config/runner-config.js';

/**
 * Logs: pino JSON, one line per event, with tenant and trace ids on the line. Traces and metrics:
 * nestjs-otel over the OpenTelemetry API; spans are recorded once an SDK is registered.
 */
@Global()
@Module({
  imports: [
    OpenTelemetryModule.forRoot({ metrics: { hostMetrics: false } }),
    LoggerModule.forRootAsync({
      inject: [RunnerConfig],
      useFactory: (c: RunnerConfig) => ({
        pinoHttp: {
          level: c.LOG_LEVEL,
          // One line per event we choose, not one per HTTP request: webhooks are the hot path.
          autoLogging: false,
          quietReqLogger: true,
          base: { service: 'greentic-runner' },
          redact: {
            paths: ['req.headers.authorization', 'req.headers["x-admin-token"]', '*.secret', '*.token'],
            censor: '[redacted]',
          },
          mixin: traceMixin,
        },
      }),
    }),
  ],
})
export class TelemetryModule {}

import { trace } from '@opentelemetry/api';

/** Puts the active trace and span ids on every log line. */
function traceMixin(): Record<string, string> {
  const sc = trace.getActiveSpan()?.spanContext();
  return sc && sc.traceId !== '00000000000000000000000000000000'
    ? { traceId: sc.traceId, spanId: sc.spanId }
    : {};
}
