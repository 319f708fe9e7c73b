import { Global, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { RunnerConfig } from '../config/runner-config.js';
import { secretRedactor } from '../secrets/secret-redactor.js';
import { traceFields } from './trace-fields.js';

/**
 * Logs: pino JSON, one line per event, with the active trace's ids on the line and every secret
 * value the runner has read blanked. Global, as Nest's Logger is: every module logs, none imports it.
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
})
export class LoggingModule {}
