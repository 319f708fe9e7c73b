import { Injectable, Module } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppModuleOptions } from '../src/app.module.js';
import { createApp, type RunnerApp } from '../src/bootstrap.js';
import { MESSAGE_BUS } from '../src/core/message-bus.js';
import { SESSION_STORE } from '../src/core/session-store.js';
import { IngressService } from '../src/messaging/ingress.service.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { writeTempBundle } from './support/temp-bundle.js';

const ECHO_FLOW = `id: echo
type: messaging
nodes:
  answer:
    reply: { text: "ok" }
`;

/** A custom module that needs the runner's ingress: it imports the messaging module it is handed. */
@Injectable()
class IngressProbe {
  constructor(readonly ingress: IngressService) {}
}

let app: RunnerApp;

beforeAll(async () => {
  const bundle = writeTempBundle({
    packs: [{ id: 'acme', flows: { 'echo.ygtc': ECHO_FLOW }, components: { echo: fixturePath('echo') } }],
    tenants: { acme: { packs: ['acme'], channels: { support: { pack: 'acme', flow: 'echo' } } } },
  });
  const imports: AppModuleOptions['imports'] = ({ messaging }) => {
    @Module({ imports: [messaging], providers: [IngressProbe] })
    class ProbeModule {}
    return [ProbeModule];
  };
  app = await createApp({ config: { GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent' }, imports });
});
afterAll(() => app?.close());

/** Issue #19: only config and logging are global; every other module imports what it uses, once. */
describe('the module graph', () => {
  const modules = () => [...app.get(ModulesContainer).values()];
  const named = (name: string) => modules().filter((m) => m.metatype.name === name);
  const one = (name: string) => {
    const found = named(name);
    if (found.length !== 1) throw new Error(`${found.length} modules named ${name}`);
    return found[0]!;
  };

  it('has no global module but config and logging (and the libraries they bring)', () => {
    const globals = modules()
      .filter((m) => m.isGlobal && m.metatype.name !== 'InternalCoreModule')
      .map((m) => m.metatype.name)
      .sort();
    expect(globals).toEqual([
      'ConfigHostModule',
      'ConfigModule',
      'LoggerModule',
      'LoggingModule',
      'RunnerConfigModule',
    ]);
  });

  it('holds one instance of each module however many modules import it', () => {
    for (const name of [
      'TenancyModule',
      'SessionsModule',
      'WasmModule',
      'PacksModule',
      'FlowsModule',
      'MessagingModule',
    ])
      expect(named(name), name).toHaveLength(1);
  });

  it('hands every importer the same seams', () => {
    const messaging = one('MessagingModule');
    const sessions = one('SessionsModule');
    const health = one('HealthModule');
    const probe = one('ProbeModule');
    expect(health.imports.has(messaging) && health.imports.has(sessions)).toBe(true);
    expect(app.get(MESSAGE_BUS, { strict: false })).toBe(messaging.getProviderByKey(MESSAGE_BUS).instance);
    expect(app.get(SESSION_STORE, { strict: false })).toBe(sessions.getProviderByKey(SESSION_STORE).instance);
    expect(probe.getProviderByKey(IngressProbe).instance).toBeInstanceOf(IngressProbe);
    expect((probe.getProviderByKey(IngressProbe).instance as IngressProbe).ingress).toBe(
      messaging.getProviderByKey(IngressService).instance,
    );
  });
});
