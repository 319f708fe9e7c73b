// The architecture's floor, without any runner logic: what the layers the runner is built from
// cost by themselves on the sync webhook path. GREENTIC_FLOOR picks how many layers:
//   http    Nest on Fastify: one POST route, its guard, the raw body parsed, a JSON answer
//   rpc     + the message handed to a Nest microservice handler (custom transport) and its guard,
//           the way a webhook reaches the ingress controller through the bus
//   worker  + one round trip to a worker thread per message (postMessage), the component hop
// Each level answers the same JSON as bench/webhook/bare-server.mjs. Prints LISTENING <url>.
// Written in plain JS (decorators applied by hand) so it needs no build step.
import 'reflect-metadata';
import { Worker } from 'node:worker_threads';
import { Controller, Injectable, Module, Post, Req, Res, UseGuards } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Server } from '@nestjs/microservices';
import { FastifyAdapter } from '@nestjs/platform-fastify';

const level = process.env.GREENTIC_FLOOR ?? 'worker';
const channels = new Map([['bench/dev/default/web', { tenant: 'bench', channel: 'web' }]]);

// The guard both doors pass: resolves the tenancy from the route or the subject and leaves it on
// the request or RPC context, as the runner's TenantGuard does; controllers are singletons.
class TenancyGuard {
  canActivate(ctx) {
    if (ctx.getType() === 'rpc') {
      const subject = ctx.switchToRpc().getContext().subject;
      const [, , , env, tenant, team, channel] = subject.split('.');
      const c = channels.get(`${tenant}/${env}/${team}/${channel}`);
      if (!c) throw new Error('unknown channel');
      ctx.switchToRpc().getContext().tenancy = c;
      return true;
    }
    const p = ctx.switchToHttp().getRequest().params;
    const c = channels.get(`${p.tenant}/${p.env}/${p.team}/${p.channel}`);
    if (!c) throw new Error('unknown channel');
    ctx.switchToHttp().getRequest().tenancy = c;
    return true;
  }
}
Injectable()(TenancyGuard);

// The hop to a worker: one message there and back per call.
let worker;
const pending = new Map();
let nextId = 1;
function callWorker(input) {
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    worker.postMessage({ id, input });
  });
}

const waiters = new Map();
class Transport extends Server {
  listen(cb) {
    cb();
  }
  close() {}
  on() {}
  unwrap() {
    return this;
  }
  deliver(subject, data) {
    // Looked up once, as the runner's BusTransport does (Nest's lookup JSON-parses the pattern).
    this.handler ??= this.getHandlerByPattern('ingress');
    return this.handler(data, { subject });
  }
}
const transport = new Transport();

async function work(msg) {
  const text = level === 'worker' ? await callWorker(msg.text) : msg.text;
  return {
    messageId: msg.messageId ?? 'm',
    sessionKey: `bench:webhook:${msg.userId}:${msg.userId}`,
    status: 'completed',
    replies: [{ text: `Weather for ${text}: sunny` }],
  };
}

class IngressController {
  async onIngress(data) {
    const out = await work(data);
    const w = waiters.get(data.key);
    waiters.delete(data.key);
    w?.(out);
    return { ok: true };
  }
}
const ingressDesc = Object.getOwnPropertyDescriptor(IngressController.prototype, 'onIngress');
MessagePattern('ingress')(IngressController.prototype, 'onIngress', ingressDesc);
UseGuards(TenancyGuard)(IngressController);
Controller()(IngressController);

let seq = 0;
class WebhookController {
  async handle(req, res) {
    const msg = JSON.parse(req.body.toString('utf8'));
    let out;
    if (level === 'http') out = await work(msg);
    else {
      const key = ++seq;
      const reply = new Promise((resolve) => waiters.set(key, resolve));
      const p = req.params;
      const subject = `greentic.messaging.ingress.${p.env}.${p.tenant}.${p.team}.${p.channel}`;
      void transport.deliver(subject, { ...msg, key });
      out = await reply;
    }
    void res.code(200).send(out);
  }
}
Req()(WebhookController.prototype, 'handle', 0);
Res()(WebhookController.prototype, 'handle', 1);
const handleDesc = Object.getOwnPropertyDescriptor(WebhookController.prototype, 'handle');
Post(':provider/:tenant/:env/:team/:channel')(WebhookController.prototype, 'handle', handleDesc);
UseGuards(TenancyGuard)(WebhookController);
Controller('webhooks')(WebhookController);

class FloorModule {}
Module({
  controllers: [WebhookController, IngressController],
  providers: [TenancyGuard],
})(FloorModule);

if (level === 'worker') {
  worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.on('message', (m) => parentPort.postMessage({ id: m.id, output: m.input }));`,
    { eval: true },
  );
  worker.on('message', (m) => {
    const r = pending.get(m.id);
    pending.delete(m.id);
    r?.(m.output);
  });
}

const app = await NestFactory.create(FloorModule, new FastifyAdapter(), {
  logger: ['error'],
  bodyParser: false,
});
const fastify = app.getHttpAdapter().getInstance();
fastify.removeAllContentTypeParsers();
fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_r, body, done) => done(null, body));
if (level !== 'http') {
  app.connectMicroservice({ strategy: transport });
  await app.startAllMicroservices();
}
await app.listen(0, '127.0.0.1');
const { port } = app.getHttpServer().address();
process.stdout.write(`LISTENING http://127.0.0.1:${port}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
