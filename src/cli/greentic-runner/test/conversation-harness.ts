import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import Handlebars from 'handlebars';
import { parse as parseYaml } from 'yaml';
import { ComponentError, GreenticError, PackError } from '../../../common/errors.js';
import { FlowExecutorService } from '../../../flows/flow-executor.service.js';
import { TenantComponents } from '../../../wasm/tenant-components.service.js';
import type { FlowRunResult, PackView } from '../../../flows/flow-run.types.js';
import { validatePack } from '../../../flows/flow-validator.js';
import type { FlowDefinition, FlowIssue } from '../../../flows/flow.types.js';
import { parseFlowSource } from '../../../flows/ygtc-loader.js';
import type { MessageEnvelope } from '../../../core/message-envelope.js';
import { DEFAULT_ARCHIVE_LIMITS } from '../../../packs/format/constants.js';
import { packDigest } from '../../../packs/format/hash.js';
import { contentsOfOpened } from '../../../packs/sources/gtpack.source.js';
import { openAnyPack } from '../../../packs/verify/open-any-pack.js';
import { trustPolicy } from '../../../packs/verify/trust.js';
import type { FlowSnapshot } from '../../../core/session-store.js';
import { buildSessionKey, messageCtxOf } from '../../../core/message-ctx.js';
import type { TenantCtx } from '../../../core/tenant-ctx.js';
import {
  WORLD_V06,
  type ComponentCall,
  type ComponentRuntime,
  type ComponentSpec,
  type PreparedComponent,
} from '../../../core/component-runtime.js';
import { callOperation } from '../../../wasm/component-calls.js';
import { DEFAULT_HTTP_POLICY } from '../../../wasm/host/http-fetch.js';
import { PooledComponentRuntime } from '../../../wasm/pool/pooled-component.runtime.js';
import type { ComponentMock, ConversationScript, MockResponse, Turn } from './conversation-script.js';
import { checkReplies, type Mismatch } from './expectations.js';

/** A pack as the harness needs it: flows as text, components as bytes read only when run for real. */
interface TestPackSource {
  id: string;
  version: string;
  location: string;
  flows: { path: string; text: string }[];
  components: { name: string; version: string; bytes: () => Promise<Uint8Array> }[];
  warnings: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

async function readPackDir(dir: string): Promise<TestPackSource> {
  const name = ['pack.yaml', 'pack.yml', 'manifest.json'].find((n) => existsSync(path.join(dir, n)));
  if (!name) throw new PackError('pack_not_found', `${dir}: no pack.yaml or manifest.json`);
  const file = path.join(dir, name);
  const text = await readFile(file, 'utf8');
  const m: unknown = name.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  if (!isRecord(m) || typeof m['id'] !== 'string')
    throw new PackError('pack_manifest_invalid', `${file}: needs 'id'`);
  const version = m['version'] === undefined ? '0.0.0' : String(m['version']);
  const inside = (rel: string): string => {
    const abs = path.resolve(dir, rel);
    if (path.isAbsolute(rel) || !abs.startsWith(dir + path.sep))
      throw new PackError('pack_path_invalid', `${file}: path '${rel}' leaves the pack directory`);
    return abs;
  };
  const flows: TestPackSource['flows'] = [];
  for (const f of Array.isArray(m['flows']) ? m['flows'] : []) {
    const rel = typeof f === 'string' ? f : isRecord(f) && typeof f['path'] === 'string' ? f['path'] : '';
    const abs = inside(rel);
    flows.push({ path: abs, text: await readFile(abs, 'utf8') });
  }
  const components: TestPackSource['components'] = [];
  for (const c of Array.isArray(m['components']) ? m['components'] : []) {
    if (!isRecord(c) || typeof c['name'] !== 'string' || typeof c['path'] !== 'string') continue;
    const abs = inside(c['path']);
    const cname = c['name'];
    components.push({
      name: cname,
      version: c['version'] === undefined ? version : String(c['version']),
      bytes: () =>
        readFile(abs).then(
          (b) => new Uint8Array(b),
          (e: Error) => {
            throw new PackError(
              'pack_file_missing',
              `component '${cname}': ${abs}: ${e.message} (build the component, or mock it in the script)`,
            );
          },
        ),
    });
  }
  return { id: m['id'], version, location: dir, flows, components, warnings: [] };
}

async function readGtpack(file: string): Promise<TestPackSource> {
  const bytes = new Uint8Array(await readFile(file));
  // Tests run packs under development: unsigned or unknown-key packs load, with their warnings shown.
  const v = await openAnyPack(bytes, {
    label: file,
    policy: trustPolicy('dev', []),
    limits: DEFAULT_ARCHIVE_LIMITS,
  });
  const c = contentsOfOpened(v, packDigest(bytes), file);
  return {
    id: c.id,
    version: c.version,
    location: file,
    flows: c.flows.map((f) => ({ path: f.path, text: f.text })),
    components: c.components.map((x) => ({ name: x.name, version: x.version, bytes: async () => x.bytes })),
    warnings: c.warnings,
  };
}

/** `<pack|dir>`: a `.gtpack` archive, or a pack directory (pack.yaml). */
export async function readTestPack(target: string): Promise<TestPackSource> {
  const st = await stat(target).catch(() => undefined);
  if (!st) throw new PackError('pack_not_found', `${target}: no such file or directory`);
  return st.isDirectory() ? readPackDir(path.resolve(target)) : readGtpack(target);
}

/**
 * Calls of the script's mocks are answered here; every other component runs in the production
 * runtime (the worker pool) with the production host imports: session state, secrets from the
 * script's `secrets:`, HTTP to the script's `http.allow`, logs.
 */
export class MockingRuntime implements ComponentRuntime {
  readonly kind = 'conversation-test';
  private real?: PooledComponentRuntime;
  private readonly calls = new Map<string, number>();
  private readonly mocks: ReadonlyMap<string, ComponentMock>;

  constructor(
    private readonly script: Pick<ConversationScript, 'mocks' | 'secrets' | 'httpAllow'>,
    private readonly cacheDir?: string,
  ) {
    this.mocks = script.mocks;
  }

  private runtime(): PooledComponentRuntime {
    const { secrets, httpAllow } = this.script;
    this.real ??= new PooledComponentRuntime({
      ...(this.cacheDir ? { cacheDir: this.cacheDir } : {}),
      settings: { minWorkers: 0, maxWorkers: 1 },
      host: {
        secrets: { get: async (_t, name) => secrets.get(name) },
        httpPolicy: () => (httpAllow.length ? { ...DEFAULT_HTTP_POLICY, allow: httpAllow } : undefined),
      },
    });
    return this.real;
  }

  async prepare(spec: ComponentSpec): Promise<PreparedComponent> {
    return this.runtime().prepare(spec);
  }

  /** A component that only exists as a mock: it declares the operations the script answers. */
  mocked(name: string, version: string): PreparedComponent {
    const ops = [...(this.mocks.get(name)?.keys() ?? [])].filter((o) => o !== '*');
    const any = this.mocks.get(name)?.has('*') ?? false;
    return {
      name,
      version,
      digest: `mock:${name}`,
      world: WORLD_V06,
      exports: [],
      operations: any ? [] : ops.map((o) => ({ name: o })),
    };
  }

  async invoke(tenant: TenantCtx, call: ComponentCall): Promise<unknown> {
    const mock = this.mocks.get(call.component.name);
    if (!mock) return this.runtime().invoke(tenant, call);
    const operation = callOperation(call);
    const responses = mock.get(operation) ?? mock.get('*');
    if (!responses) {
      throw new ComponentError(
        'mock_missing',
        `the script mocks component '${call.component.name}' but not its operation '${operation}'`,
        502,
        { retryable: false },
      );
    }
    const key = `${call.component.name}.${operation}`;
    const n = (this.calls.get(key) ?? 0) + 1;
    this.calls.set(key, n);
    const r: MockResponse = responses[Math.min(n, responses.length) - 1]!;
    if (r.delayMs !== undefined) await new Promise((res) => setTimeout(res, r.delayMs).unref());
    const scope = {
      input: call.input,
      call: { operation, attempt: call.ctx.attempt ?? 1, n },
    };
    if (r.error !== undefined)
      throw new ComponentError(r.code ?? 'component_failed', String(render(r.error, scope)), 502);
    return render(r.result ?? null, scope);
  }

  async close(): Promise<void> {
    await this.real?.close();
  }
}

const hb = Handlebars.create();

/** Strings of a canned result may use `{{input.x}}` and `{{call.n}}`; a whole-string `{{x}}` keeps x's type. */
function render(v: unknown, scope: Record<string, unknown>): unknown {
  if (typeof v === 'string') {
    if (!v.includes('{{')) return v;
    const whole = /^\{\{\s*([\w.]+)\s*\}\}$/.exec(v);
    if (whole) {
      let cur: unknown = scope;
      for (const seg of whole[1]!.split('.')) cur = isRecord(cur) ? cur[seg] : undefined;
      if (cur !== undefined && typeof cur !== 'string') return cur;
    }
    return hb.compile(v, { noEscape: true })(scope);
  }
  if (Array.isArray(v)) return v.map((x) => render(x, scope));
  if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, render(x, scope)]));
  return v;
}

export interface LoadedTestPack {
  pack: PackView;
  warnings: string[];
  issues: FlowIssue[];
  runtime: MockingRuntime;
}

/** Reads the pack, validates its flows, prepares its components: mocked ones answer their canned results, the rest run for real. */
export async function loadTestPack(
  target: string,
  script: ConversationScript,
  cacheDir?: string,
): Promise<LoadedTestPack> {
  const src = await readTestPack(target);
  const runtime = new MockingRuntime(script, cacheDir);
  const unknownMocks = [...script.mocks.keys(), ...script.real].filter(
    (n) => !src.components.some((c) => c.name === n),
  );
  const warnings = [...src.warnings];
  for (const n of unknownMocks)
    warnings.push(`the script mocks '${n}', which is not a component of pack '${src.id}'`);

  const components = new Map<string, PreparedComponent>();
  for (const c of src.components) {
    if (script.mocks.has(c.name)) {
      components.set(c.name, runtime.mocked(c.name, c.version));
    } else {
      components.set(
        c.name,
        await runtime.prepare({ name: c.name, version: c.version, bytes: await c.bytes() }),
      );
    }
  }
  const flows: FlowDefinition[] = [];
  const issues: FlowIssue[] = [];
  for (const f of src.flows) {
    const out = parseFlowSource(f.text, f.path);
    issues.push(...out.issues);
    if (out.partial) flows.push(out.partial);
  }
  issues.push(...validatePack(flows, { components }));
  return {
    pack: { id: src.id, version: src.version, flows: new Map(flows.map((f) => [f.id, f])), components },
    warnings,
    issues,
    runtime,
  };
}

export interface TurnReport {
  turn: Turn;
  result?: FlowRunResult;
  elapsedMs: number;
  mismatch?: Mismatch;
}

export interface ConversationReport {
  ok: boolean;
  flowId: string;
  turns: TurnReport[];
}

class TurnTimeout extends Error {}

/**
 * Plays the script's turns against the flow, carrying the parked snapshot and session data from
 * turn to turn as a session store would (through JSON). Stops at the first turn that does not go
 * as scripted. `onTurn` sees each turn as it completes (the CLI prints the transcript from it).
 */
export async function runConversation(
  script: ConversationScript,
  loaded: LoadedTestPack,
  onTurn: (r: TurnReport) => void = () => undefined,
): Promise<ConversationReport> {
  const { pack } = loaded;
  const flowId = script.flow ?? (pack.flows.size === 1 ? [...pack.flows.keys()][0]! : undefined);
  if (flowId === undefined || !pack.flows.has(flowId)) {
    throw new GreenticError(
      'test_flow_unknown',
      script.flow === undefined
        ? `the pack has ${pack.flows.size} flows (${[...pack.flows.keys()].join(', ')}): name one with 'flow:' in the script`
        : `pack '${pack.id}' has no flow '${script.flow}' (it has: ${[...pack.flows.keys()].join(', ')})`,
      400,
    );
  }
  const executor = new FlowExecutorService();
  const tenant: TenantCtx = { tenantId: script.tenant, envId: 'test', teamId: 'default' };
  const components = new TenantComponents(tenant, loaded.runtime);
  const conversationId = 'conversation';
  let snapshot: FlowSnapshot | null = null;
  let sessionData: Record<string, unknown> = structuredClone(script.session);
  const reports: TurnReport[] = [];
  for (const turn of script.turns) {
    const message: MessageEnvelope = {
      id: `turn-${turn.index}`,
      tenant: tenant.tenantId,
      env: tenant.envId,
      team: 'default',
      channel: 'test',
      provider: 'test',
      conversationId,
      userId: script.user,
      sessionKey: buildSessionKey(tenant.tenantId, 'test', conversationId, script.user),
      text: turn.user,
      attachments: [],
      ...(turn.action ? { action: turn.action } : {}),
      timestamp: new Date().toISOString(),
    };
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const report: TurnReport = { turn, elapsedMs: 0 };
    try {
      report.result = await Promise.race([
        executor.run({
          tenant,
          components,
          ctx: messageCtxOf(message, tenant),
          message,
          pack,
          flowId,
          snapshot,
          sessionData,
          allowedSecrets: [...script.secrets.keys()],
          stepLimit: 100,
          componentDeadlineMs: turn.timeoutMs,
          traceDetail: true,
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TurnTimeout()), turn.timeoutMs);
          timer.unref();
        }),
      ]);
    } catch (e) {
      if (!(e instanceof TurnTimeout)) throw e;
      report.mismatch = {
        headline: `the turn took longer than its limit of ${turn.timeoutMs} ms`,
        diff: [
          `- expected: the flow to answer within ${turn.timeoutMs} ms`,
          `+ actual:   no answer after ${turn.timeoutMs} ms`,
        ],
      };
    } finally {
      clearTimeout(timer);
    }
    report.elapsedMs = performance.now() - t0;
    if (report.result) report.mismatch = judge(turn, report.result);
    reports.push(report);
    onTurn(report);
    if (report.mismatch || !report.result) return { ok: false, flowId, turns: reports };
    snapshot = report.result.snapshot
      ? (JSON.parse(JSON.stringify(report.result.snapshot)) as FlowSnapshot)
      : null;
    sessionData = JSON.parse(JSON.stringify(report.result.sessionData)) as Record<string, unknown>;
  }
  return { ok: true, flowId, turns: reports };
}

/** The first way a turn differs from its script: status, error code, then replies. */
function judge(turn: Turn, r: FlowRunResult): Mismatch | undefined {
  const failedUnexpectedly = r.status === 'failed' && turn.status !== 'failed' && turn.error === undefined;
  if ((turn.status !== undefined && turn.status !== r.status) || failedUnexpectedly) {
    return {
      headline: `the flow ${r.status === 'failed' ? 'failed' : `ended ${r.status}`}${turn.status ? `, expected ${turn.status}` : ''}`,
      diff: [
        `- status: ${turn.status ?? 'completed or parked'}`,
        `+ status: ${r.status}${r.error ? ` (${r.error.code}: ${r.error.message})` : ''}`,
      ],
    };
  }
  if (turn.error !== undefined && r.error?.code !== turn.error) {
    return {
      headline: `expected the flow to fail with '${turn.error}'`,
      diff: [
        `- error: ${turn.error}`,
        `+ error: ${r.error ? `${r.error.code}: ${r.error.message}` : `none (status ${r.status})`}`,
      ],
    };
  }
  if (turn.expect) return checkReplies(turn.expect, r.replies);
  return undefined;
}
