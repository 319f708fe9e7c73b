import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, FlowValidationError, PackError } from '../../common/errors.js';
import { parseFlow } from '../../flows/ygtc-loader.js';
import { formatIssue, type FlowIssue } from '../../flows/flow.types.js';
import { DEFAULT_ARCHIVE_LIMITS } from '../../packs/format/constants.js';
import { DirectoryPackSource } from '../../packs/sources/directory-pack.source.js';
import { openAnyPack } from '../../packs/verify/open-any-pack.js';
import { trustPolicy } from '../../packs/verify/trust.js';
import {
  DEFAULT_LIMITS,
  type Bundle,
  type ChannelBinding,
  type TenantBinding,
} from '../../tenancy/bundle.types.js';

/** Where `start --pack` serves its pack: one tenant, env, team, and two channels. */
export const PACK_TENANT = 'local';
export const PACK_ENV = 'dev';
export const PACK_TEAM = 'default';
export const PACK_WEBHOOK_CHANNEL = 'web';
export const PACK_WEBCHAT_CHANNEL = 'webchat';

/** What `start --pack` needs to know about a pack before the runner loads it for real. */
export interface PackEntrypoint {
  id: string;
  version: string;
  /** Absolute path of the `.gtpack` file or pack directory. */
  location: string;
  layout: 'directory' | 'legacy' | 'pack-v1';
  /** The messaging flow both channels are bound to. */
  flow: string;
  /** Every flow of the pack with its kind, in the pack's order. */
  flows: { id: string; kind: string }[];
}

/** A flow of the pack and whether a message can start it. */
interface FlowSummary {
  id: string;
  kind: string;
  /** False for a flow-v1 flow without nodes (upstream packs whose builder lost the graph). */
  runnable: boolean;
}

const describeFlows = (flows: readonly FlowSummary[]): string =>
  flows.length === 0
    ? 'it has no flows'
    : `its flows: ${flows.map((f) => `${f.id} (${f.kind}${f.runnable ? '' : ', no nodes'})`).join(', ')}`;

function noMessagingFlow(location: string, id: string, flows: readonly FlowSummary[]): ConfigError {
  return new ConfigError(
    `--pack ${location}: pack '${id}' has no messaging flow to bind the web and webchat channels to (${describeFlows(flows)})`,
    { pack: id },
  );
}

/** The first of `preferred` that is a runnable messaging flow, else the first runnable messaging flow. */
function pickMessaging(flows: readonly FlowSummary[], preferred: readonly string[]): string | undefined {
  const ok = flows.filter((f) => f.kind === 'messaging' && f.runnable);
  return (preferred.map((p) => ok.find((f) => f.id === p)).find((f) => f) ?? ok[0])?.id;
}

/**
 * Reads the pack `--pack` names (a `.gtpack` of either layout, or a pack directory) far enough to know
 * its id and the messaging flow to serve: for pack-v1, the reader's default messaging entrypoint (the
 * messaging flow tagged `default`, else `main`, else the first); for the older layout and directories,
 * the first messaging flow among `entry_flows`, else the first messaging flow. The archive is verified
 * here under the dev policy (so a broken pack fails before the app starts); the runner's pack source
 * verifies it again when it loads it, with the trusted keys.
 */
export async function readPackEntrypoint(packPath: string, cwd = process.cwd()): Promise<PackEntrypoint> {
  const location = path.resolve(cwd, packPath);
  const st = await stat(location).catch((e: NodeJS.ErrnoException) => {
    throw new ConfigError(
      e.code === 'ENOENT'
        ? `--pack ${location}: no such file or directory`
        : `--pack ${location}: cannot read: ${e.message}`,
      { file: location },
    );
  });
  if (st.isDirectory()) return readPackDirectory(location);
  const bytes = await readFile(location).catch((e: Error) => {
    throw new ConfigError(`--pack ${location}: cannot read: ${e.message}`, { file: location });
  });
  const opened = await openAnyPack(new Uint8Array(bytes), {
    label: location,
    policy: trustPolicy('dev', []),
    limits: DEFAULT_ARCHIVE_LIMITS,
  });
  if (opened.format === 'pack-v1') {
    const m = opened.pack.manifest;
    const flows = m.flows.map((f) => ({ id: f.id, kind: f.kind, runnable: f.flow.nodes.length > 0 }));
    const flow = opened.pack.defaultEntrypoint?.flow;
    if (!flow) throw noMessagingFlow(location, m.pack_id, flows);
    return { id: m.pack_id, version: m.version, location, layout: 'pack-v1', flow, flows: strip(flows) };
  }
  const m = opened.pack.manifest;
  const flows = m.flows.map((f) => ({ id: f.id, kind: f.kind, runnable: true }));
  const flow = pickMessaging(flows, m.meta.entry_flows);
  if (!flow) throw noMessagingFlow(location, m.meta.pack_id, flows);
  return {
    id: m.meta.pack_id,
    version: m.meta.version,
    location,
    layout: 'legacy',
    flow,
    flows: strip(flows),
  };
}

const strip = (flows: readonly FlowSummary[]): { id: string; kind: string }[] =>
  flows.map(({ id, kind }) => ({ id, kind }));

/** A pack directory (the development form): its manifest names the id, its `.ygtc` files the flows. */
async function readPackDirectory(dir: string): Promise<PackEntrypoint> {
  const { file, manifest } = await readDirectoryManifest(dir);
  const id = typeof manifest['id'] === 'string' ? manifest['id'] : undefined;
  if (!id)
    throw new PackError(
      'pack_manifest_invalid',
      `--pack ${file}: no 'id'${'pack_id' in manifest ? " (a 'pack_id' manifest is upstream's build source: pass the .gtpack built from it)" : ''}`,
      { file },
    );
  const contents = await new DirectoryPackSource().load({ id, source: `file:${dir}` }, dir);
  const flows: FlowSummary[] = [];
  const issues: FlowIssue[] = [];
  for (const f of contents.flows) {
    const parsed = parseFlow(f.text, f.path);
    issues.push(...parsed.issues.filter((i) => i.severity === 'error'));
    if (parsed.flow) flows.push({ id: parsed.flow.id, kind: parsed.flow.type, runnable: true });
  }
  const entry = manifest['entry_flows'];
  const flow = pickMessaging(flows, Array.isArray(entry) ? entry.map(String) : []);
  if (!flow) {
    // A flow that does not parse may be the messaging one: its errors say more than "none found".
    if (issues.length > 0)
      throw new FlowValidationError(
        `pack '${id}' has invalid flows:\n  ${issues.map(formatIssue).join('\n  ')}`,
        issues,
      );
    throw noMessagingFlow(dir, id, flows);
  }
  return { id, version: contents.version, location: dir, layout: 'directory', flow, flows: strip(flows) };
}

async function readDirectoryManifest(
  dir: string,
): Promise<{ file: string; manifest: Record<string, unknown> }> {
  for (const name of ['pack.yaml', 'pack.yml', 'manifest.json']) {
    const file = path.join(dir, name);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    let m: unknown;
    try {
      m = name.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    } catch (e) {
      throw new PackError('pack_manifest_invalid', `${file}: ${(e as Error).message}`, { file });
    }
    if (!m || typeof m !== 'object' || Array.isArray(m))
      throw new PackError('pack_manifest_invalid', `${file}: not a mapping`, { file });
    return { file, manifest: m as Record<string, unknown> };
  }
  throw new PackError(
    'pack_not_found',
    `--pack ${dir}: a directory without pack.yaml or manifest.json (not a pack)`,
    { file: dir },
  );
}

/**
 * The bundle `start --pack` runs, built in memory rather than written to a YAML file: the loader's
 * job is to validate a file someone wrote, and this one is fixed by the command. Tenant `local`, env
 * `dev`, team `default`; channel `web` (generic webhook) and `webchat` (the runner's chat page), both
 * bound to the pack's messaging flow; the dev trust policy; default limits; no outgoing HTTP.
 */
export function packOnlyBundle(pack: PackEntrypoint): Bundle {
  const channel = (id: string, provider: string, settings: Record<string, unknown>): ChannelBinding => ({
    id,
    provider,
    pack: pack.id,
    flow: pack.flow,
    sessionTtlSeconds: 3600,
    settings,
    secrets: [],
    secretRefs: {},
  });
  const channels = new Map([
    [PACK_WEBHOOK_CHANNEL, channel(PACK_WEBHOOK_CHANNEL, 'webhook', {})],
    [
      PACK_WEBCHAT_CHANNEL,
      channel(PACK_WEBCHAT_CHANNEL, 'webchat', { title: `${pack.id} ${pack.version}`, bot_name: pack.id }),
    ],
  ]);
  const tenant: TenantBinding = {
    id: PACK_TENANT,
    envs: new Map([
      [
        PACK_ENV,
        {
          id: PACK_ENV,
          teams: new Map([[PACK_TEAM, { id: PACK_TEAM, channels }]]),
          timers: new Map(),
        },
      ],
    ]),
    packs: [{ id: pack.id, source: `file:${pack.location}` }],
    secrets: { backend: 'env', options: {} },
    limits: DEFAULT_LIMITS,
    http: { allow: [], timeoutMs: 10_000, maxResponseBytes: 1024 * 1024 },
  };
  return {
    // Messages that name "the bundle file" then name the pack.
    file: pack.location,
    dir: path.dirname(pack.location),
    tenants: new Map([[PACK_TENANT, tenant]]),
    trust: { policy: 'dev', keys: [] },
    limits: DEFAULT_LIMITS,
  };
}

/** The two addresses `start --pack` prints, under the runner's base URL. */
export function packUrls(base: string): { webhook: string; page: string; directLine: string } {
  const tenancy = `${PACK_TENANT}/${PACK_ENV}/${PACK_TEAM}`;
  return {
    webhook: `${base}/webhooks/webhook/${tenancy}/${PACK_WEBHOOK_CHANNEL}`,
    page: `${base}/webchat/${tenancy}/${PACK_WEBCHAT_CHANNEL}`,
    directLine: `${base}/webchat/${tenancy}/${PACK_WEBCHAT_CHANNEL}/v3/directline`,
  };
}
