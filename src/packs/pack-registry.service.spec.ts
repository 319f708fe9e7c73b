import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ComponentLoadError, PackError } from '../common/errors.js';
import { RunnerConfig } from '../config/runner-config.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import {
  DEFAULT_LIMITS,
  type Bundle,
  type ChannelBinding,
  type PackBinding,
  type TenantBinding,
} from '../tenancy/bundle.types.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import {
  WORLD_V01,
  type ComponentRuntime,
  type ComponentSpec,
  type PreparedComponent,
} from '../core/component-runtime.js';
import type { PackContents, PackSource } from './pack-source.js';
import { PackRegistry } from './pack-registry.service.js';

/** A flow calling `component` and replying with a text that names the pack version. */
const flow = (id: string, component: string, label: string) => `id: ${id}
type: messaging
nodes:
  call:
    component.exec:
      component: ${component}
      operation: execute
    routing:
      - to: answer
  answer:
    reply: { text: "${label} {{call.payload}}" }
`;

interface PackShape {
  /** flow id → component it calls (default: `main` calling `echo`). */
  flows?: Record<string, string>;
  components?: string[];
}

/** Pack contents as a source yields them once verified; the digest follows the contents. */
function pack(id: string, version: string, shape: PackShape = {}): PackContents {
  const flows = Object.entries(shape.flows ?? { main: 'echo' }).map(([flowId, component]) => ({
    id: flowId,
    path: `flows/${flowId}.ygtc`,
    text: flow(flowId, component, `${id}@${version}`),
  }));
  const components: ComponentSpec[] = (shape.components ?? ['echo']).map((name) => ({
    name,
    version,
    bytes: new TextEncoder().encode(`${id}/${name}@${version}`),
  }));
  const digest = createHash('sha256')
    .update(JSON.stringify([id, version, flows, components.map((c) => c.name)]))
    .digest('hex');
  return {
    id,
    version,
    digest: `sha256:${digest}`,
    flows,
    components,
    assets: new Map(),
    warnings: [],
    location: `mem:${id}`,
  };
}

/** Packs published under a name; `mem:<name>` loads whatever is published there now. */
class MemorySource implements PackSource {
  readonly schemes = ['mem'] as const;
  private readonly published = new Map<string, PackContents | Error>();
  private readonly stalls = new Map<string, Promise<void>>();
  readonly loads: string[] = [];
  readonly probes: string[] = [];
  /** Names whose probe is waiting on a stall now. */
  readonly stalled = new Set<string>();

  publish(name: string, contents: PackContents | Error): void {
    this.published.set(name, contents);
  }

  /** Makes every probe of `name` wait (as a registry that does not answer) until released. */
  stall(name: string): () => void {
    let release!: () => void;
    this.stalls.set(name, new Promise<void>((resolve) => (release = resolve)));
    return () => {
      this.stalls.delete(name);
      release();
    };
  }

  /** The change marker: what is published there now. */
  async probe(binding: PackBinding): Promise<string> {
    const name = binding.source.slice('mem:'.length);
    this.probes.push(name);
    const stall = this.stalls.get(name);
    if (stall) {
      this.stalled.add(name);
      await stall;
      this.stalled.delete(name);
    }
    const p = this.published.get(name);
    return p instanceof Error ? `error:${p.message}` : `digest:${p?.digest}`;
  }

  async load(binding: PackBinding): Promise<PackContents> {
    const name = binding.source.slice('mem:'.length);
    this.loads.push(name);
    const p = this.published.get(name);
    if (!p) throw new PackError('pack_not_found', `nothing published at '${binding.source}'`);
    if (p instanceof Error) throw p;
    return p;
  }
}

/** Prepares by name; a component can be made to fail, or to wait until the test lets it go. */
class FakeRuntime implements ComponentRuntime {
  readonly kind = 'fake';
  readonly prepared: string[] = [];
  /** Prepares asked for, counted before any hold. */
  asked = 0;
  readonly released: TenantCtx[] = [];
  private readonly failing = new Set<string>();
  private gate: Promise<void> | undefined;
  closed = false;

  fail(name: string): void {
    this.failing.add(name);
  }

  /** Holds every prepare until the returned function is called. */
  hold(): () => void {
    let open!: () => void;
    this.gate = new Promise<void>((resolve) => (open = resolve));
    return () => {
      this.gate = undefined;
      open();
    };
  }

  async prepare(spec: ComponentSpec): Promise<PreparedComponent> {
    this.asked++;
    await this.gate;
    this.prepared.push(`${spec.name}@${spec.version}`);
    if (this.failing.has(spec.name))
      throw new ComponentLoadError(`component '${spec.name}' failed to compile: bad magic`);
    return {
      name: spec.name,
      version: spec.version,
      digest: createHash('sha256').update(spec.bytes).digest('hex'),
      world: WORLD_V01,
      exports: ['execute'],
      operations: [{ name: 'execute' }],
    };
  }

  invoke(): Promise<unknown> {
    return Promise.reject(new Error('the registry never invokes components'));
  }

  async release(tenant: TenantCtx): Promise<void> {
    this.released.push(tenant);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function channel(id: string, packId: string, flowId: string): ChannelBinding {
  return {
    id,
    provider: 'webhook',
    pack: packId,
    flow: flowId,
    sessionTtlSeconds: 60,
    settings: {},
    secrets: [],
    secretRefs: {},
  };
}

/** tenant → its one pack binding (source `mem:<tenant>-bot`) and one channel bound to `bot`/`main`. */
function bundle(tenants: string[]): Bundle {
  const bindings = new Map<string, TenantBinding>(
    tenants.map((t) => [
      t,
      {
        id: t,
        envs: new Map([
          [
            'dev',
            {
              id: 'dev',
              teams: new Map([
                ['default', { id: 'default', channels: new Map([['web', channel('web', 'bot', 'main')]]) }],
              ]),
            },
          ],
        ]),
        packs: [{ id: 'bot', source: `mem:${t}-bot` }],
        secrets: { backend: 'env', options: {} },
        limits: DEFAULT_LIMITS,
      },
    ]),
  );
  return {
    file: '/bundle.yaml',
    dir: '/',
    tenants: bindings,
    trust: { policy: 'dev', keys: [] },
    limits: DEFAULT_LIMITS,
  };
}

interface Setup {
  registry: PackRegistry;
  source: MemorySource;
  runtime: FakeRuntime;
}

const registries: PackRegistry[] = [];

interface SetupOptions {
  tenants?: string[];
  keepVersions?: number;
  /** The watcher's poll interval; 0 (the default here): no polling. */
  watchIntervalMs?: number;
}

function setup(options: SetupOptions = {}): Setup {
  const source = new MemorySource();
  const runtime = new FakeRuntime();
  const config = new RunnerConfig();
  config.GREENTIC_PACK_WATCH_INTERVAL_MS = options.watchIntervalMs ?? 0;
  if (options.keepVersions !== undefined) config.GREENTIC_PACK_KEEP_VERSIONS = options.keepVersions;
  const registry = new PackRegistry(
    new BundleRegistry(bundle(options.tenants ?? ['acme'])),
    [source],
    runtime,
    undefined,
    config,
  );
  registries.push(registry);
  return { registry, source, runtime };
}

/** Loaded at start with `bot@1.0.0` for each tenant. */
async function started(options: SetupOptions = {}): Promise<Setup> {
  const s = setup(options);
  for (const t of options.tenants ?? ['acme']) s.source.publish(`${t}-bot`, pack('bot', '1.0.0'));
  await s.registry.loadAll();
  return s;
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!cond()) throw new Error('condition not met within 5 s');
}

afterEach(async () => {
  for (const r of registries.splice(0)) await r.onApplicationShutdown();
});

describe('PackRegistry: swap', () => {
  it('makes a new version current on reload, and a message that took the old one keeps it', async () => {
    const { registry, source } = await started();
    const inFlight = registry.current('acme', 'bot')!;
    expect(inFlight.version).toBe('1.0.0');

    source.publish('acme-bot', pack('bot', '2.0.0'));
    const [result] = await registry.reload();

    expect(result).toMatchObject({
      tenant: 'acme',
      pack: 'bot',
      outcome: 'updated',
      version: '2.0.0',
      previous: { version: '1.0.0', digest: inFlight.digest },
    });
    expect(registry.current('acme', 'bot')?.version).toBe('2.0.0');
    // The message that took 1.0.0 before the swap still runs 1.0.0's flows and components.
    expect(inFlight.version).toBe('1.0.0');
    expect(inFlight.components.get('echo')?.version).toBe('1.0.0');
    const nodes = [...(inFlight.flows.get('main')?.nodes.values() ?? [])];
    expect(JSON.stringify(nodes)).toContain('bot@1.0.0 {{call.payload}}');
    expect(registry.version('acme', 'bot', '1.0.0')).toBe(inFlight);
  });

  it('keeps serving the old version until the new one has prepared its components', async () => {
    const { registry, source, runtime } = await started();
    source.publish('acme-bot', pack('bot', '2.0.0'));
    const release = runtime.hold();
    const reloading = registry.reload({ tenant: 'acme', pack: 'bot' });
    // The source has loaded (verified) 2.0.0 and its component is being prepared: not current yet.
    await until(() => runtime.asked === 2);
    expect(source.loads).toEqual(['acme-bot', 'acme-bot']);
    expect(registry.current('acme', 'bot')?.version).toBe('1.0.0');
    release();
    expect((await reloading)[0]?.outcome).toBe('updated');
    expect(registry.current('acme', 'bot')?.version).toBe('2.0.0');
  });

  it('answers unchanged for the same contents and prepares nothing again', async () => {
    const { registry, runtime } = await started();
    const before = registry.current('acme', 'bot');
    expect(runtime.prepared).toEqual(['echo@1.0.0']);
    const [result] = await registry.reload();
    expect(result).toMatchObject({ outcome: 'unchanged', version: '1.0.0' });
    expect(runtime.prepared).toEqual(['echo@1.0.0']);
    expect(registry.current('acme', 'bot')).toBe(before);
  });

  it('runs reloads of one pack one at a time, in the order asked', async () => {
    const { registry, source, runtime } = await started();
    source.publish('acme-bot', pack('bot', '2.0.0'));
    const release = runtime.hold();
    const first = registry.reload();
    await until(() => runtime.asked === 2);
    source.publish('acme-bot', pack('bot', '3.0.0'));
    const second = registry.reload();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The second reload waits for the first: its source was not read yet.
    expect(source.loads).toHaveLength(2);
    release();
    expect((await first)[0]).toMatchObject({ outcome: 'updated', version: '2.0.0' });
    expect((await second)[0]).toMatchObject({
      outcome: 'updated',
      version: '3.0.0',
      previous: { version: '2.0.0' },
    });
    expect(registry.current('acme', 'bot')?.version).toBe('3.0.0');
  });
});

describe('PackRegistry: hold', () => {
  it('holds the last keep_versions versions for parked sessions and evicts older ones', async () => {
    const { registry, source } = await started({ keepVersions: 2 });
    source.publish('acme-bot', pack('bot', '2.0.0'));
    await registry.reload();
    // Both held: a session parked on 1.0.0 resumes on it.
    expect(registry.version('acme', 'bot', '1.0.0')?.version).toBe('1.0.0');
    expect(registry.version('acme', 'bot', '2.0.0')).toBe(registry.current('acme', 'bot'));

    source.publish('acme-bot', pack('bot', '3.0.0'));
    await registry.reload();
    expect(registry.version('acme', 'bot', '1.0.0')).toBeUndefined();
    expect(registry.version('acme', 'bot', '2.0.0')?.version).toBe('2.0.0');
    expect(registry.current('acme', 'bot')?.version).toBe('3.0.0');
    expect(registry.status()[0]?.held?.map((h) => h.version)).toEqual(['2.0.0', '3.0.0']);
  });

  it('a republished version becomes current again without being held twice', async () => {
    const { registry, source } = await started({ keepVersions: 3 });
    const v1 = pack('bot', '1.0.0');
    source.publish('acme-bot', pack('bot', '2.0.0'));
    await registry.reload();
    source.publish('acme-bot', v1);
    const [result] = await registry.reload();
    expect(result).toMatchObject({ outcome: 'updated', version: '1.0.0', previous: { version: '2.0.0' } });
    expect(registry.current('acme', 'bot')?.digest).toBe(v1.digest);
    expect(registry.status()[0]?.held?.map((h) => h.version)).toEqual(['2.0.0', '1.0.0']);
  });
});

describe('PackRegistry: refuse', () => {
  it('a version its source refuses keeps the previous one serving and records the error', async () => {
    const { registry, source, runtime } = await started();
    source.publish('acme-bot', new PackError('pack_signature_invalid', 'signature does not verify'));
    const [result] = await registry.reload();

    expect(result).toMatchObject({
      outcome: 'failed',
      version: '1.0.0',
      error: { code: 'pack_signature_invalid', message: 'signature does not verify' },
    });
    expect(registry.current('acme', 'bot')?.version).toBe('1.0.0');
    // Nothing of an unverified pack is prepared.
    expect(runtime.prepared).toEqual(['echo@1.0.0']);
    const [status] = registry.status();
    expect(status).toMatchObject({
      version: '1.0.0',
      error: 'signature does not verify',
      lastError: { code: 'pack_signature_invalid', message: 'signature does not verify' },
    });

    // A good version afterwards clears the error.
    source.publish('acme-bot', pack('bot', '2.0.0'));
    expect((await registry.reload())[0]?.outcome).toBe('updated');
    expect(registry.status()[0]).not.toHaveProperty('lastError');
    expect(registry.status()[0]?.error).toBeUndefined();
  });

  it('a version whose component fails to prepare is refused', async () => {
    const { registry, source, runtime } = await started();
    source.publish(
      'acme-bot',
      pack('bot', '2.0.0', { components: ['echo', 'broken'], flows: { main: 'echo' } }),
    );
    runtime.fail('broken');
    const [result] = await registry.reload();
    expect(result).toMatchObject({
      outcome: 'failed',
      version: '1.0.0',
      error: { code: 'component_load_failed', message: "component 'broken' failed to compile: bad magic" },
    });
    expect(registry.current('acme', 'bot')?.version).toBe('1.0.0');
    expect(registry.version('acme', 'bot', '2.0.0')).toBeUndefined();
  });

  it('a version whose flows do not validate is refused, naming the flow issue', async () => {
    const { registry, source } = await started();
    // `main` calls a component the pack does not carry.
    source.publish('acme-bot', pack('bot', '2.0.0', { flows: { main: 'weather' }, components: ['echo'] }));
    const [result] = await registry.reload();
    expect(result?.outcome).toBe('failed');
    expect(result?.error?.code).toBe('flow_invalid');
    expect(result?.error?.message).toContain("pack 'bot@2.0.0' has invalid flows");
    expect(result?.error?.message).toContain('weather');
    expect(registry.current('acme', 'bot')?.version).toBe('1.0.0');
  });

  it('a version that drops a flow a channel is bound to is refused', async () => {
    const { registry, source } = await started();
    source.publish('acme-bot', pack('bot', '2.0.0', { flows: { other: 'echo' } }));
    const [result] = await registry.reload();
    expect(result).toMatchObject({ outcome: 'failed', error: { code: 'binding_flow_missing' } });
    expect(result?.error?.message).toContain("channel 'acme/dev/default/web'");
    expect(registry.current('acme', 'bot')?.version).toBe('1.0.0');
  });

  it('at start, a pack that fails to load stops loadAll with its error and nothing is ready', async () => {
    const { registry, source, runtime } = setup();
    source.publish('acme-bot', pack('bot', '1.0.0', { components: ['broken'], flows: { main: 'broken' } }));
    runtime.fail('broken');
    await expect(registry.loadAll()).rejects.toThrow(ComponentLoadError);
    expect(registry.ready).toBe(false);
    expect(registry.current('acme', 'bot')).toBeUndefined();
    expect(registry.status()[0]).toMatchObject({ lastError: { code: 'component_load_failed' } });
  });
});

describe('PackRegistry: tenants and packs it does not know', () => {
  it('load() refuses an unknown tenant; reload() and changed() skip what the bundle lacks', async () => {
    const { registry, source } = await started();
    await expect(registry.load('nobody', { id: 'bot', source: 'mem:acme-bot' })).rejects.toMatchObject({
      code: 'unknown_tenant',
      message: "unknown tenant 'nobody'",
    });
    expect(await registry.reload({ tenant: 'nobody' })).toEqual([]);
    expect(await registry.reload({ tenant: 'acme', pack: 'nope' })).toEqual([]);
    const loads = source.loads.length;
    await registry.changed('nobody', 'bot');
    await registry.changed('acme', 'nope');
    expect(source.loads).toHaveLength(loads);
    expect(registry.current('nobody', 'bot')).toBeUndefined();
    expect(registry.current('acme', 'nope')).toBeUndefined();
    expect(registry.version('acme', 'bot', '9.9.9')).toBeUndefined();
  });

  it('a binding whose source scheme no source handles is refused with a clear error', async () => {
    const { registry } = await started();
    await expect(
      registry.load('acme', { id: 'bot', source: 'ftp://example/bot.gtpack' }),
    ).rejects.toMatchObject({
      code: 'pack_source_unsupported',
      message: "no pack source handles 'ftp:' (source 'ftp://example/bot.gtpack')",
    });
    expect(registry.current('acme', 'bot')?.version).toBe('1.0.0');
  });

  it("one tenant's reload or failure never changes another tenant's pack", async () => {
    const { registry, source } = await started({ tenants: ['acme', 'globex'] });
    const globex = registry.current('globex', 'bot');
    source.publish('acme-bot', pack('bot', '2.0.0'));
    source.publish('globex-bot', new PackError('pack_signature_invalid', 'bad signature'));
    const results = await registry.reload({ tenant: 'acme' });
    expect(results.map((r) => [r.tenant, r.outcome])).toEqual([['acme', 'updated']]);
    expect(registry.current('acme', 'bot')?.version).toBe('2.0.0');
    expect(registry.current('globex', 'bot')).toBe(globex);

    const [failed] = await registry.reload({ tenant: 'globex' });
    expect(failed).toMatchObject({ tenant: 'globex', outcome: 'failed' });
    expect(registry.current('acme', 'bot')?.version).toBe('2.0.0');
    expect(registry.status().map((s) => [s.tenant, s.version, s.error])).toEqual([
      ['acme', '2.0.0', undefined],
      ['globex', '1.0.0', 'bad signature'],
    ]);
  });
});

describe('PackRegistry: watcher polls', () => {
  it("a source that does not answer one tenant's probe holds back no other tenant's reload", async () => {
    const { registry, source } = await started({ tenants: ['acme', 'globex'], watchIntervalMs: 20 });
    const release = source.stall('globex-bot');
    await until(() => source.stalled.has('globex-bot'));

    source.publish('acme-bot', pack('bot', '2.0.0'));
    await until(() => registry.current('acme', 'bot')?.version === '2.0.0');
    expect(source.stalled.has('globex-bot')).toBe(true);
    expect(registry.current('globex', 'bot')?.version).toBe('1.0.0');

    // Once it answers, its polls go on and its next version is picked up.
    source.publish('globex-bot', pack('bot', '2.0.0'));
    release();
    await until(() => registry.current('globex', 'bot')?.version === '2.0.0');
    expect(registry.status().map((s) => [s.tenant, s.version, s.lastError])).toEqual([
      ['acme', '2.0.0', undefined],
      ['globex', '2.0.0', undefined],
    ]);
  });

  it('polls a pack again only after its previous poll finished: ticks meanwhile queue nothing', async () => {
    const { registry, source } = await started({ watchIntervalMs: 10 });
    const release = source.stall('acme-bot');
    await until(() => source.stalled.has('acme-bot'));
    const probes = source.probes.length;
    // A poll while the probe waits skips the pack at once, rather than queueing behind it.
    const waited = new Promise((resolve) => setTimeout(() => resolve('still waiting after 1 s'), 1_000));
    expect(await Promise.race([registry.check(), waited])).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(source.probes).toHaveLength(probes);

    source.publish('acme-bot', pack('bot', '2.0.0'));
    release();
    await until(() => registry.current('acme', 'bot')?.version === '2.0.0');
  });
});
