import { Global, Module, type OnApplicationShutdown } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { MetricService } from 'nestjs-otel';
import { RunnerConfig } from '../config/runner-config.js';
import { secretRedactor } from '../secrets/secret-redactor.js';
import { RunnerInstrumentation } from './instrumentation.service.js';
import { MetricsController } from './metrics.controller.js';
import { telemetry } from './otel.js';
import { traceFields } from './trace-fields.js';
import { RunnerMetrics } from './runner-metrics.js';

/**
 * Logs: pino JSON, one line per event, with tenant and trace ids on the line and every secret
 * value the runner has read blanked. Traces and metrics: nestjs-otel over the OpenTelemetry API,
 * recorded by the SDK that `startTelemetry()` (src/telemetry/otel.ts) starts before Nest; spans
 * and instruments are no-ops when it is off.
 */
@Global()
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [RunnerConfig],
      useFactory: (c: RunnerConfig) => ({
        // No per-request child logger (pino-http) on any route: it keeps the request's logger in
        // AsyncLocalStorage, and once one request has run through it (a health probe will) the
        // storage's promise hooks tax every promise of the process on Node 20, the message path
        // included. Log lines carry tenant and trace ids from the mixin and the call sites.
        forRoutes: [],
        pinoHttp: {
          level: c.LOG_LEVEL,
          // One line per event we choose, not one per HTTP request: webhooks are the hot path.
          autoLogging: false,
          quietReqLogger: true,
          base: { service: 'greentic-runner' },
          redact: {
            paths: [
              'req.headers.authorization',
              'req.headers["x-admin-token"]',
              '*.secret',
              '*.token',
              '*.password',
              '*.client_secret',
            ],
            censor: '[redacted]',
          },
          // Trace ids of the active context; the message path also puts them on its lines itself.
          mixin: () => traceFields(),
          // Last line of defence: a secret value that reached a log line by any path is blanked.
          hooks: { streamWrite: (s: string) => secretRedactor.redact(s) },
        },
      }),
    }),
  ],
  controllers: [MetricsController],
  // nestjs-otel's MetricService on its own, not its OpenTelemetryModule: that module's configure()
  // puts its wide-event middleware on every route (no option turns it off), which brings Nest's
  // middleware layer (middie) onto every webhook, about 5% of a message's CPU; we use no wide events.
  providers: [MetricService, RunnerMetrics, RunnerInstrumentation],
  exports: [MetricService, RunnerMetrics, RunnerInstrumentation],
})
export class TelemetryModule implements OnApplicationShutdown {
  /** Closing an app exports the spans it queued; the SDK itself lives as long as the process. */
  async onApplicationShutdown(): Promise<void> {
    await telemetry()?.forceFlush();
  }
}
