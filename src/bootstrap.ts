import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import { Logger as PinoNestLogger } from 'nestjs-pino';
import { setupOpenApi } from './admin/openapi.js';
import { AppModule, type AppModuleOptions } from './app.module.js';
import { RunnerConfig } from './config/runner-config.js';
import { BusTransport } from './messaging/bus.transport.js';
import { MESSAGE_BUS, type MessageBus } from './messaging/message-bus.js';
import { PackRegistry } from './packs/pack-registry.service.js';
import { startTelemetry } from './telemetry/otel.js';
import { BundleRegistry } from './tenancy/bundle-registry.service.js';

/**
 * Everything main.ts and the end-to-end tests share: body parsing (raw for webhooks, so providers
 * can check signatures over the exact bytes), the bus transport for ingress controllers, packs
 * loaded before the first message.
 */
export async function configureApp(app: NestExpressApplication): Promise<void> {
  const bundle = app.get(BundleRegistry).bundle;
  app.useLogger(app.get(PinoNestLogger));
  app.use('/webhooks', express.raw({ type: () => true, limit: bundle.limits.maxBodyBytes }));
  app.use(express.json({ limit: bundle.limits.maxBodyBytes }));
  // No enableShutdownHooks(): the entry point installs installGracefulShutdown() (src/health),
  // which drains before closing and exits 0; tests close the app themselves.
  setupOpenApi(app);
  await app.get(PackRegistry).loadAll();
  app.connectMicroservice(
    { strategy: new BusTransport(app.get<MessageBus>(MESSAGE_BUS), { queue: 'greentic-runner' }) },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();
}

export async function createApp(opts: AppModuleOptions = {}): Promise<NestExpressApplication> {
  // Before the container exists: instruments and tracers bind to the SDK's global providers.
  await startTelemetry({ ...process.env, ...(opts.config ?? {}) });
  // abortOnError: false so a bad bundle surfaces as an error with its message, not a bare exit.
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(opts), {
    bodyParser: false,
    bufferLogs: true,
    abortOnError: false,
  });
  try {
    await configureApp(app);
  } catch (e) {
    await app.close().catch(() => undefined);
    throw e;
  }
  return app;
}

export async function startApp(
  opts: AppModuleOptions = {},
): Promise<{ app: NestExpressApplication; url: string }> {
  const app = await createApp(opts);
  const cfg = app.get(RunnerConfig);
  await app.listen(cfg.PORT, cfg.HOST);
  const addr = app.getHttpServer().address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.PORT;
  return { app, url: `http://${cfg.HOST}:${port}` };
}
