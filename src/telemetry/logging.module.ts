import { Global, Injectable, Module, type LoggerService } from '@nestjs/common';
import { Logger as PinoNestLogger, LoggerModule, type Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import pinoPretty from 'pino-pretty';
import { RunnerConfig } from '../config/runner-config.js';
import { secretRedactor } from '../secrets/secret-redactor.js';
import { traceFields } from './trace-fields.js';

/**
 * Nest's start-up chatter that says nothing an operator acts on: one line per controller and per
 * route (about 60) and one per module. Logged at debug, so `LOG_LEVEL=debug` still shows them.
 */
const STARTUP_DETAIL_CONTEXTS = new Set(['RoutesResolver', 'RouterExplorer', 'InstanceLoader']);

/**
 * The logger Nest is given (`app.useLogger`): nestjs-pino's, with the start-up detail above moved
 * from info to debug. Nest passes the context as the last argument of `log`.
 */
@Injectable()
export class RunnerNestLogger implements LoggerService {
  constructor(private readonly pino: PinoNestLogger) {}

  log(message: unknown, ...rest: unknown[]): void {
    const context = rest[rest.length - 1];
    if (typeof context === 'string' && STARTUP_DETAIL_CONTEXTS.has(context))
      this.pino.debug(message, ...rest);
    else this.pino.log(message, ...rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.pino.error(message, ...rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.pino.warn(message, ...rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.pino.debug(message, ...rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.pino.verbose(message, ...rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.pino.fatal(message, ...rest);
  }
}

/**
 * LOG_FORMAT=pretty: pino-pretty as an in-process stream, written synchronously like pino's own
 * stdout, so lines logged just before an exit are not lost. The redaction hook still runs first.
 */
function prettyStream(): DestinationStream {
  return pinoPretty({
    sync: true,
    translateTime: 'SYS:HH:MM:ss.l',
    // One line per event, as in JSON: `12:00:01.234 INFO: PackRegistry: pack loaded {"tenant":...}`.
    singleLine: true,
    messageFormat: '{if context}{context}: {end}{msg}',
    ignore: 'pid,hostname,service,context',
    colorize: process.stdout.isTTY === true,
  });
}

/** The pino options of the runner's one logger (exported for the format spec). */
export function loggerParams(c: RunnerConfig): Params {
  const options = {
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
  };
  return {
    // No per-request child logger (pino-http) on any route: it keeps the request's logger in
    // AsyncLocalStorage, and once one request has run through it (a health probe will) the
    // storage's promise hooks tax every promise of the process before Node 24, the message path
    // included. Log lines carry tenant and trace ids from the mixin and the call sites.
    forRoutes: [],
    pinoHttp: c.LOG_FORMAT === 'pretty' ? [options, prettyStream()] : options,
  };
}

/**
 * Logs: pino, one line per event, with the active trace's ids on the line and every secret value
 * the runner has read blanked; JSON or pretty per LOG_FORMAT. Global, as Nest's Logger is: every
 * module logs, none imports it.
 */
@Global()
@Module({
  imports: [LoggerModule.forRootAsync({ inject: [RunnerConfig], useFactory: loggerParams })],
  providers: [RunnerNestLogger],
  exports: [RunnerNestLogger],
})
export class LoggingModule {}
