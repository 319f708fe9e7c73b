import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { setupOpenApi } from './admin/openapi.js';
import { AppModule, type AppModuleOptions } from './app.module.js';
import { installBodyParsing } from './common/http-body.js';
import { RunnerConfig } from './config/runner-config.js';
import { lifecycleHook } from './health/lifecycle.hook.js';
import { LifecycleService } from './health/lifecycle.service.js';
import { BusTransport } from './messaging/bus.transport.js';
import { EgressDispatcher } from './messaging/egress-dispatcher.service.js';
import { EGRESS_ROUTES } from './messaging/egress.controller.js';
import { answerFrameworkError } from './messaging/greentic-exception.filter.js';
import { MESSAGE_BUS, type MessageBus } from './core/message-bus.js';
import { PackRegistry } from './packs/pack-registry.service.js';
import { RunnerNestLogger } from './telemetry/logging.module.js';
import { startTelemetry, telemetry } from './telemetry/otel.js';
import { installWebhookSpans } from './telemetry/webhook-span.hooks.js';
import { BundleRegistry } from './tenancy/bundle-registry.service.js';

/** The HTTP application type: Nest on Fastify (see README, "Why Fastify"). */
export type RunnerApp = NestFastifyApplication;

/**
 * Everything main.ts and the end-to-end tests share: body parsing (raw for webhooks, so providers
 * can check signatures over the exact bytes), the lifecycle and span hooks, the bus transport for
 * ingress controllers, packs loaded before the first message.
 */
export async function configureApp(app: RunnerApp): Promise<void> {
  const bundle = app.get(BundleRegistry).bundle;
  app.useLogger(app.get(RunnerNestLogger));
  const fastify = app.getHttpAdapter().getInstance();
  installBodyParsing(fastify, bundle.limits);
  // Fastify hooks rather than Nest middleware: they run without the middleware layer's per-request
  // routing, and the span hook activates its context after the body is read (see the hook).
  fastify.addHook('onRequest', lifecycleHook(app.get(LifecycleService)));
  // Without a tracer provider the spans would be no-ops that still cost two listeners a request.
  if (telemetry()?.tracing) installWebhookSpans(fastify);
  // No enableShutdownHooks(): the entry point installs installGracefulShutdown() (src/health),
  // which drains before closing and exits 0; tests close the app themselves.
  setupOpenApi(app);
  await app.get(PackRegistry).loadAll();
  app.connectMicroservice(
    {
      strategy: new BusTransport(app.get<MessageBus>(MESSAGE_BUS), {
        queue: 'greentic-runner',
        // Egress is consumed per provider (a failing provider holds up only its own replies).
        routes: { [EGRESS_ROUTES]: () => app.get(EgressDispatcher).routes() },
      }),
    },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();
}

/**
 * Nest's start-up logs (modules, routes) stay buffered until the app is up: a failed start prints
 * its one error line, not a page of route mappings before it. At debug/trace they are printed anyway.
 */
function releaseStartupLogs(opts: AppModuleOptions): void {
  const level = opts.config?.LOG_LEVEL ?? process.env['LOG_LEVEL'];
  if (level !== 'debug' && level !== 'trace') Logger.overrideLogger(false);
  Logger.flush();
}

async function buildApp(opts: AppModuleOptions): Promise<RunnerApp> {
  // Before the container exists: instruments and tracers bind to the SDK's global providers.
  await startTelemetry({ ...process.env, ...(opts.config ?? {}) });
  const adapter = new FastifyAdapter({
    // Express answered `/health/` like `/health`; callers and probes may rely on it.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
    // Refusals before routing (a bad escape, an overlong segment) in the runner's error shape.
    frameworkErrors: answerFrameworkError,
  });
  // abortOnError: false so a bad bundle surfaces as an error with its message, not a bare exit;
  // autoFlushLogs: false so neither a failure nor useLogger() prints the buffered logs.
  let app: RunnerApp;
  try {
    app = await NestFactory.create<RunnerApp>(AppModule.forRoot(opts), adapter, {
      bodyParser: false,
      bufferLogs: true,
      autoFlushLogs: false,
      abortOnError: false,
    });
  } catch (e) {
    releaseStartupLogs(opts);
    throw e;
  }
  try {
    await configureApp(app);
  } catch (e) {
    await app.close().catch(() => undefined);
    releaseStartupLogs(opts);
    throw e;
  }
  return app;
}

export async function createApp(opts: AppModuleOptions = {}): Promise<RunnerApp> {
  const app = await buildApp(opts);
  app.flushLogs();
  return app;
}

export async function startApp(opts: AppModuleOptions = {}): Promise<{ app: RunnerApp; url: string }> {
  const app = await buildApp(opts);
  const cfg = app.get(RunnerConfig);
  try {
    await app.listen(cfg.PORT, cfg.HOST);
  } catch (e) {
    await app.close().catch(() => undefined);
    releaseStartupLogs(opts);
    throw e;
  }
  app.flushLogs();
  const addr = app.getHttpServer().address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.PORT;
  return { app, url: `http://${cfg.HOST}:${port}` };
}
