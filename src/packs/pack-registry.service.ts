import { createHash } from 'node:crypto';
import { MetricService } from 'nestjs-otel';
import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import { FlowValidationError, GreenticError, PackError } from '../common/errors.js';
import { RunnerConfig } from '../config/runner-config.js';
import { parseFlow } from '../flows/ygtc-loader.js';
import { validateFlow, validateFlowCalls } from '../flows/flow-validator.js';
import { checkFlowV1 } from '../flows/flow-v1-check.js';
import { importFlowV1 } from '../flows/flow-v1-import.js';
import { formatIssue, type FlowDefinition, type FlowIssue } from '../flows/flow.types.js';
import type { PackView } from '../flows/flow-run.types.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { packAssetsDir } from '../wasm/pack-assets.js';
import type { TenantComponentDigests } from '../wasm/tenant-component-digests.js';
import type { PackBinding, TenantBinding } from '../tenancy/bundle.types.js';
import { tenantKey, type TenantCtx } from '../core/tenant-ctx.js';
import {
  COMPONENT_RUNTIME,
  type ComponentRuntime,
  type PreparedComponent,
} from '../core/component-runtime.js';
import { PACK_SOURCES, type PackContents, type PackSource } from './pack-source.js';
import { PackWatcher } from './pack-watcher.js';
import { PackTrustService } from './verify/pack-trust.service.js';

/** One loaded, verified, validated pack version. */
export interface LoadedPack extends PackView {
  digest: string;
  location: string;
  signer?: string;
  warnings: string[];
  loadedAt: string;
  /** Overlay packs applied on top of this one (their flows replace same-id flows). */
  overlays?: { id: string; version: string; digest: string; signer?: string }[];
}

export interface PackLoadError {
  code: string;
  message: string;
  at: string;
}

export interface PackStatus {
  tenant: string;
  pack: string;
  source?: string;
  version?: string;
  digest?: string;
  location?: string;
  signer?: string;
  loadedAt?: string;
  warnings: string[];
  /** Message of the last failed load or reload, while the previous version keeps serving. */
  error?: string;
  lastError?: PackLoadError;
  /** Versions held for parked sessions, oldest first (the last one serves new conversations). */
  held?: { version: string; digest: string }[];
  overlays?: LoadedPack['overlays'];
}

export type ReloadOutcome = 'updated' | 'unchanged' | 'failed';

export interface ReloadResult {
  tenant: string;
  pack: string;
  outcome: ReloadOutcome;
  version?: string;
  digest?: string;
  previous?: { version: string; digest: string };
  error?: { code: string; message: string };
}

/**
 * Loaded pack versions per tenant. A version becomes current only after its source verified it,
 * every component was prepared and every flow validated; until then, and whenever any of that
 * fails, the previous version keeps serving. Swapping is one array push: a message takes its
 * pack once (FlowRouter), so messages in flight finish on the version they started with.
 */
@Injectable()
export class PackRegistry implements OnApplicationShutdown, TenantComponentDigests {
  private readonly logger = new Logger(PackRegistry.name);
  /** tenantId → packId → versions, newest last. */
  private readonly packs = new Map<string, Map<string, LoadedPack[]>>();
  private readonly errors = new Map<string, PackLoadError>();
  /** Last probe marker per tenant/pack, so the watcher reloads only on change. */
  private readonly markers = new Map<string, string>();
  /** One load at a time per tenant/pack (watcher, filesystem events and admin calls race). */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Tenant/packs whose watcher poll is still running (a slow source is not probed again meanwhile). */
  private readonly polling = new Set<string>();
  private readonly keepVersions: number;
  /** Where a pack's assets are written for its components' read-only WASI preopen. */
  private readonly assetsCacheDir: string | undefined;
  private readonly watchIntervalMs: number;
  private watcher?: PackWatcher;
  private loaded = false;
  /** Reloads once packs are ready (the start-up load is not one, nor a poll that found nothing new). */
  private readonly reloads = new MetricService().getCounter('greentic_pack_reloads', {
    description: 'Pack reloads, by tenant, pack and outcome',
  });

  constructor(
    private readonly bundles: BundleRegistry,
    @Inject(PACK_SOURCES) private readonly sources: PackSource[],
    @Inject(COMPONENT_RUNTIME) private readonly runtime: ComponentRuntime,
    @Optional() private readonly trust?: PackTrustService,
    @Optional() config?: RunnerConfig,
  ) {
    this.assetsCacheDir = config?.GREENTIC_CACHE_DIR;
    this.keepVersions = config?.GREENTIC_PACK_KEEP_VERSIONS ?? 3;
    this.watchIntervalMs = config?.GREENTIC_PACK_WATCH_INTERVAL_MS ?? 0;
  }

  get ready(): boolean {
    return this.loaded;
  }

  /** Loads every tenant's packs, checks each channel binding points at a real flow, starts watching. */
  async loadAll(): Promise<void> {
    for (const t of this.bundles.tenants()) {
      for (const binding of t.packs) {
        const r = await this.refresh(t, binding, { force: true });
        if (r.outcome === 'failed')
          throw (
            this.lastThrown.get(`${t.id}/${binding.id}`) ?? new PackError(r.error!.code, r.error!.message)
          );
      }
      this.checkBindings(t);
    }
    this.loaded = true;
    this.startWatching();
  }

  private readonly lastThrown = new Map<string, Error>();

  private checkBindings(t: TenantBinding): void {
    for (const env of t.envs.values())
      for (const team of env.teams.values())
        for (const ch of team.channels.values()) {
          const pack = this.current(t.id, ch.pack);
          if (!pack?.flows.has(ch.flow)) {
            throw new PackError(
              'binding_flow_missing',
              `${this.bundles.bundle.file}: channel '${t.id}/${env.id}/${team.id}/${ch.id}' is bound to flow '${ch.flow}', which pack '${ch.pack}' does not have (it has: ${[...(pack?.flows.keys() ?? [])].join(', ') || 'nothing'})`,
            );
          }
        }
  }

  /** Loads one pack for a tenant; throws (and keeps the old version) if anything is wrong. */
  async load(tenantId: string, binding: PackBinding): Promise<LoadedPack> {
    const t = this.bundles.tenants().find((x) => x.id === tenantId);
    if (!t) throw new PackError('unknown_tenant', `unknown tenant '${tenantId}'`);
    const r = await this.refresh(t, binding, { force: true });
    if (r.outcome === 'failed')
      throw (
        this.lastThrown.get(`${tenantId}/${binding.id}`) ?? new PackError(r.error!.code, r.error!.message)
      );
    return this.current(tenantId, binding.id)!;
  }

  /**
   * Reloads the packs matching the filter (all by default), re-reading the trust keys first.
   * Never throws for a pack: each result says updated, unchanged or failed (with the reason).
   */
  async reload(filter: { tenant?: string; pack?: string } = {}): Promise<ReloadResult[]> {
    if (this.trust) {
      try {
        this.trust.refresh();
      } catch (e) {
        this.logger.error(
          { err: (e as Error).message },
          'trusted keys could not be re-read; keeping the previous ones',
        );
      }
    }
    const out: ReloadResult[] = [];
    for (const t of this.bundles.tenants()) {
      if (filter.tenant && filter.tenant !== t.id) continue;
      for (const b of t.packs) {
        if (filter.pack && filter.pack !== b.id) continue;
        out.push(await this.refresh(t, b, { force: true }));
      }
    }
    return out;
  }

  /**
   * Watcher entry: probe every source, reload the ones whose marker changed. Each tenant/pack is
   * polled on its own, and one whose last poll has not finished is skipped: a registry that takes
   * its whole fetch timeout to answer delays no other pack's reload.
   */
  async check(): Promise<ReloadResult[]> {
    const runs: Promise<ReloadResult>[] = [];
    for (const t of this.bundles.tenants())
      for (const b of t.packs) {
        const key = `${t.id}/${b.id}`;
        if (this.polling.has(key)) continue;
        this.polling.add(key);
        runs.push(this.refresh(t, b, { force: false }).finally(() => this.polling.delete(key)));
      }
    return (await Promise.all(runs)).filter((r) => r.outcome !== 'unchanged');
  }

  /** Filesystem event on a path: reload the packs whose source watches it. */
  async changed(tenantId: string, packId: string): Promise<void> {
    const t = this.bundles.tenants().find((x) => x.id === tenantId);
    const b = t?.packs.find((p) => p.id === packId);
    if (t && b) await this.refresh(t, b, { force: false });
  }

  private refresh(t: TenantBinding, binding: PackBinding, opts: { force: boolean }): Promise<ReloadResult> {
    const key = `${t.id}/${binding.id}`;
    const prev = this.queues.get(key) ?? Promise.resolve();
    const next = prev
      .then(() => this.doRefresh(t, binding, opts))
      .then((r) => {
        if (this.loaded && (opts.force || r.outcome !== 'unchanged'))
          this.reloads.add(1, { tenant: r.tenant, pack: r.pack, outcome: r.outcome });
        return r;
      });
    this.queues.set(
      key,
      next.catch(() => undefined),
    );
    return next;
  }

  private async doRefresh(
    t: TenantBinding,
    binding: PackBinding,
    opts: { force: boolean },
  ): Promise<ReloadResult> {
    const key = `${t.id}/${binding.id}`;
    const source = this.sourceFor(binding.source);
    const before = this.current(t.id, binding.id);
    const base = { tenant: t.id, pack: binding.id };
    let marker: string | undefined;
    try {
      marker = await this.probe(binding);
    } catch (e) {
      if (!opts.force) {
        this.logger.warn(
          { tenant: t.id, pack: binding.id, err: (e as Error).message },
          'pack source probe failed; will retry',
        );
        return { ...base, outcome: 'unchanged', version: before?.version, digest: before?.digest };
      }
    }
    if (!opts.force && marker !== undefined && this.markers.get(key) === marker) {
      return { ...base, outcome: 'unchanged', version: before?.version, digest: before?.digest };
    }
    try {
      this.trust?.assertAllowed(t);
      const main = await source.load(binding, this.bundles.bundle.dir);
      const overlays: PackContents[] = [];
      for (const ov of binding.overlays ?? [])
        overlays.push(await this.sourceFor(ov.source).load(ov, this.bundles.bundle.dir));
      if (marker !== undefined) this.markers.set(key, marker);
      if (before && before.digest === composedDigest(main, overlays)) {
        this.errors.delete(key);
        return { ...base, outcome: 'unchanged', version: before.version, digest: before.digest };
      }
      const pack = await this.build(main, overlays);
      this.checkChannelFlows(t, binding.id, pack);
      const versions = this.versionsOf(t.id, binding.id);
      const same = versions.findIndex((v) => v.digest === pack.digest);
      if (same >= 0) versions.splice(same, 1);
      versions.push(pack);
      if (versions.length > this.keepVersions) versions.splice(0, versions.length - this.keepVersions);
      this.errors.delete(key);
      this.lastThrown.delete(key);
      for (const w of pack.warnings)
        this.logger.warn({ tenant: t.id, pack: pack.id, version: pack.version }, w);
      this.logger.log(
        {
          tenant: t.id,
          pack: pack.id,
          version: pack.version,
          digest: pack.digest,
          signer: pack.signer,
          previous: before?.version,
        },
        before ? 'pack version swapped in' : 'pack loaded',
      );
      return {
        ...base,
        outcome: 'updated',
        version: pack.version,
        digest: pack.digest,
        ...(before ? { previous: { version: before.version, digest: before.digest } } : {}),
      };
    } catch (e) {
      if (marker !== undefined) this.markers.set(key, marker);
      const err = e as Error;
      const code = err instanceof GreenticError ? err.code : 'pack_load_failed';
      this.errors.set(key, { code, message: err.message, at: new Date().toISOString() });
      this.lastThrown.set(key, err);
      this.logger.error(
        { tenant: t.id, pack: binding.id, code, err: err.message, serving: before?.version ?? null },
        before ? 'pack reload failed; the previous version keeps serving' : 'pack load failed',
      );
      return {
        ...base,
        outcome: 'failed',
        version: before?.version,
        digest: before?.digest,
        error: { code, message: err.message },
      };
    }
  }

  /** One marker for the pack and its overlays; undefined when any source cannot say. */
  private async probe(binding: PackBinding): Promise<string | undefined> {
    const parts: string[] = [];
    for (const b of [binding, ...(binding.overlays ?? [])]) {
      const m = await this.sourceFor(b.source).probe?.(b, this.bundles.bundle.dir);
      if (m === undefined) return undefined;
      parts.push(m);
    }
    return parts.join('|');
  }

  /** A new version must still have every flow a channel of this tenant is bound to. */
  private checkChannelFlows(t: TenantBinding, packId: string, pack: LoadedPack): void {
    if (!this.loaded) return;
    for (const env of t.envs.values())
      for (const team of env.teams.values())
        for (const ch of team.channels.values()) {
          if (ch.pack === packId && !pack.flows.has(ch.flow)) {
            throw new PackError(
              'binding_flow_missing',
              `pack '${packId}@${pack.version}' has no flow '${ch.flow}', which channel '${t.id}/${env.id}/${team.id}/${ch.id}' is bound to`,
            );
          }
        }
  }

  current(tenantId: string, packId: string): LoadedPack | undefined {
    const v = this.packs.get(tenantId)?.get(packId);
    return v?.[v.length - 1];
  }

  /** Digests of the components in a tenant's current packs: what its pool workers warm up with. */
  componentDigests(tenantId: string): string[] {
    const digests = new Set<string>();
    for (const binding of this.bundles.bundle.tenants.get(tenantId)?.packs ?? []) {
      for (const c of this.current(tenantId, binding.id)?.components.values() ?? []) digests.add(c.digest);
    }
    return [...digests];
  }

  /** A held version (for sessions parked on it), newest first when a version was republished. */
  version(tenantId: string, packId: string, version: string): LoadedPack | undefined {
    return this.packs
      .get(tenantId)
      ?.get(packId)
      ?.findLast((p) => p.version === version);
  }

  status(): PackStatus[] {
    const out: PackStatus[] = [];
    for (const t of this.bundles.tenants()) {
      for (const b of t.packs) {
        const p = this.current(t.id, b.id);
        const err = this.errors.get(`${t.id}/${b.id}`);
        out.push({
          tenant: t.id,
          pack: b.id,
          source: b.source,
          version: p?.version,
          digest: p?.digest,
          location: p?.location,
          signer: p?.signer,
          loadedAt: p?.loadedAt,
          warnings: p?.warnings ?? [],
          error: err?.message,
          ...(err ? { lastError: err } : {}),
          held: (this.packs.get(t.id)?.get(b.id) ?? []).map((v) => ({
            version: v.version,
            digest: v.digest,
          })),
          ...(p?.overlays ? { overlays: p.overlays } : {}),
        });
      }
    }
    return out;
  }

  watching(): { intervalMs: number; paths: string[] } | undefined {
    return this.watcher?.describe();
  }

  async release(tenant: TenantCtx): Promise<void> {
    await this.runtime.release?.(tenant);
    this.logger.log({ tenant: tenantKey(tenant) }, 'component instances released');
  }

  async onApplicationShutdown(): Promise<void> {
    this.watcher?.stop();
    await this.runtime.close();
  }

  private startWatching(): void {
    if (this.watcher) return;
    const targets: { tenant: string; pack: string; paths: string[] }[] = [];
    for (const t of this.bundles.tenants()) {
      for (const b of t.packs) {
        const paths = [b, ...(b.overlays ?? [])].flatMap(
          (x) => this.sourceFor(x.source).watchPaths?.(x, this.bundles.bundle.dir) ?? [],
        );
        if (paths.length > 0) targets.push({ tenant: t.id, pack: b.id, paths });
      }
    }
    this.watcher = new PackWatcher(this, this.watchIntervalMs, targets);
    this.watcher.start();
  }

  private sourceFor(source: string): PackSource {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(source)?.[1]?.toLowerCase() ?? 'file';
    const s = this.sources.find((x) => x.schemes.includes(scheme));
    if (!s)
      throw new PackError(
        'pack_source_unsupported',
        `no pack source handles '${scheme}:' (source '${source}')`,
      );
    return s;
  }

  private versionsOf(tenantId: string, packId: string): LoadedPack[] {
    let byPack = this.packs.get(tenantId);
    if (!byPack) this.packs.set(tenantId, (byPack = new Map()));
    let v = byPack.get(packId);
    if (!v) byPack.set(packId, (v = []));
    return v;
  }

  /**
   * Prepares the components and validates the flows of a pack and its overlays as one: overlay
   * flows replace the pack's flows of the same id, overlay components join (and win by name), and
   * every flow is validated against the combined components.
   */
  private async build(main: PackContents, overlays: PackContents[] = []): Promise<LoadedPack> {
    const layers = [main, ...overlays];
    const label = `${main.id}@${main.version}${overlays.map((o) => ` + ${o.id}@${o.version}`).join('')}`;
    const components = new Map<string, PreparedComponent>();
    // Components see the pack's assets/ (overlays' win by path) read-only at `/` over WASI.
    const assetsDir = await packAssetsDir(new Map(layers.flatMap((l) => [...l.assets])), {
      cacheDir: this.assetsCacheDir,
    });
    for (const layer of layers) {
      const own = new Set<string>();
      for (const spec of layer.components) {
        if (own.has(spec.name))
          throw new PackError(
            'pack_component_duplicate',
            `pack '${layer.id}': component '${spec.name}' listed twice`,
          );
        own.add(spec.name);
        components.set(
          spec.name,
          await this.runtime.prepare(assetsDir && !spec.assetsDir ? { ...spec, assetsDir } : spec),
        );
      }
    }
    const flows = new Map<string, FlowDefinition>();
    const issues: FlowIssue[] = [];
    for (const layer of layers) {
      const own = new Set<string>();
      for (const f of layer.flows) {
        const parsed = parseFlow(f.text, f.path);
        issues.push(...parsed.issues.filter((i) => i.severity === 'error'));
        if (!parsed.flow) continue;
        if (f.id && f.id !== parsed.flow.id) {
          issues.push({
            severity: 'error',
            code: 'flow_id_mismatch',
            message: `flow id '${parsed.flow.id}' does not match the manifest's '${f.id}'`,
            file: f.path,
            line: 1,
            column: 1,
          });
        }
        if (own.has(parsed.flow.id)) {
          issues.push({
            severity: 'error',
            code: 'flow_duplicate',
            message: `flow '${parsed.flow.id}' defined twice in pack '${layer.id}'`,
            file: f.path,
            line: 1,
            column: 1,
          });
        }
        own.add(parsed.flow.id);
        flows.set(parsed.flow.id, parsed.flow);
      }
      // pack-v1 manifests: flow-v1 IR loaded as it is, unless the archive also carries that flow's
      // `.ygtc` source (packs built here), which keeps the runner's built-ins and positions.
      for (const entry of layer.flowsV1 ?? []) {
        if (own.has(entry.flow.id)) continue;
        const imported = importFlowV1(entry.flow, `${layer.location}!manifest.cbor`);
        issues.push(...imported.issues.filter((i) => i.severity === 'error'));
        for (const w of imported.issues.filter((i) => i.severity === 'warning'))
          this.logger.warn({ pack: layer.id }, formatIssue(w));
        if (!imported.flow) continue;
        own.add(imported.flow.id);
        flows.set(imported.flow.id, imported.flow);
      }
    }
    for (const flow of flows.values()) {
      if (flow.dialect === 'flow-v1') {
        issues.push(...checkFlowV1(flow, components));
        continue;
      }
      const v = validateFlow(flow, { components });
      issues.push(...v.filter((i) => i.severity === 'error'));
      for (const w of v.filter((i) => i.severity === 'warning'))
        this.logger.warn({ pack: main.id }, formatIssue(w));
    }
    // Pack-level: every `flow.call` names a flow of the (combined) pack, and calls never cycle.
    issues.push(...validateFlowCalls(flows.values()).filter((x) => x.severity === 'error'));
    if (issues.length > 0) {
      throw new FlowValidationError(
        `pack '${label}' has invalid flows:\n  ${issues.map(formatIssue).join('\n  ')}`,
        issues,
      );
    }
    return {
      id: main.id,
      // Overlays are part of the version, so a session parked on one combination resumes on it.
      version:
        overlays.length === 0
          ? main.version
          : `${main.version}+${overlays.map((o) => `${o.id}.${o.version}`).join('.')}`,
      digest: composedDigest(main, overlays),
      location: main.location,
      signer: main.signer,
      warnings: [
        ...main.warnings,
        ...overlays.flatMap((o) => o.warnings.map((w) => `overlay '${o.id}': ${w}`)),
      ],
      flows,
      components,
      // Overlays' assets join the pack's, and win by path like their components.
      assets: new Map(layers.flatMap((l) => [...l.assets])),
      loadedAt: new Date().toISOString(),
      ...(overlays.length > 0
        ? {
            overlays: overlays.map((o) => ({
              id: o.id,
              version: o.version,
              digest: o.digest,
              signer: o.signer,
            })),
          }
        : {}),
    };
  }
}

/** The pack's digest, or with overlays a digest over all of theirs (in order). */
function composedDigest(main: PackContents, overlays: readonly PackContents[]): string {
  if (overlays.length === 0) return main.digest;
  const h = createHash('sha256');
  for (const c of [main, ...overlays]) h.update(`${c.id}\n${c.digest}\n`);
  return `sha256:${h.digest('hex')}`;
}
