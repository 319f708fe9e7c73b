/**
 * `greentic-component`: author WebAssembly components for the runner without a Rust toolchain.
 *
 *   new <name> --world 0.1|0.6|upstream   a TypeScript component skeleton (SDK) with its WIT (world + host imports)
 *   build [dir]                  bundle (rolldown, with the SDK) + componentize-js, cached per machine by inputs
 *   describe <file.wasm>         world, exports, imports, operations
 *   run <file.wasm> --input …    one call through the runner's own worker pool
 *   wat <file.wat>               assemble component text format with jco
 *
 * Exit codes (docs/cli.md): 0 ok, 1 not a usable component or the call failed, 2 usage or I/O error.
 */
import { ConsoleLogger, Logger, type LogLevel } from '@nestjs/common';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { existsSync, watch } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { ComponentLoadError, GreenticError } from '../../common/errors.js';
import {
  WORLD_VERSIONS,
  writeUpstreamWitProject,
  writeWitProject,
  type WorldVersion,
} from '../../wasm/authoring/wit-project.js';
import { SDK_DIR } from '../../wasm/authoring/component-bundle.js';
import {
  assembleWatFile,
  buildComponent,
  componentCacheDir,
  type BuildProgress,
  type ComponentizeFeature,
} from '../../wasm/component-builder.js';
import type { ComponentCallContext, ComponentSpec, PreparedComponent } from '../../core/component-runtime.js';
import { DEFAULT_HTTP_POLICY } from '../../wasm/host/http-fetch.js';
import { PooledComponentRuntime } from '../../wasm/pool/pooled-component.runtime.js';
import { notAComponent } from '../../wasm/wasm-input-errors.js';
import {
  applyCliConventions,
  commanderExitCode,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
} from '../common/cli-conventions.js';
import { COMPONENT_SOURCE, componentSource } from './templates.js';

export { EXIT_OK, EXIT_USAGE };
export const EXIT_INVALID = EXIT_FAILED;
export const EXIT_CALL_FAILED = EXIT_FAILED;

const EXAMPLES = {
  '': [
    'greentic-component new greeter',
    'greentic-component build greeter',
    'greentic-component run greeter/dist/greeter.wasm --input \'{"name":"Ada"}\'',
  ],
  new: ['greentic-component new greeter', 'greentic-component new legacy --world 0.1 --dir components'],
  build: [
    'greentic-component build greeter',
    'greentic-component build greeter -o packs/support/components/greeter.wasm --watch',
    'greentic-component build . --json',
  ],
  describe: ['greentic-component describe greeter.wasm', 'greentic-component describe greeter.wasm --json'],
  run: [
    'greentic-component run greeter.wasm --input \'{"name":"Ada"}\'',
    'greentic-component run weather.wasm --op forecast --input @input.json --secret API_KEY=x --allow-host api.example.com',
    'greentic-component run echo.wasm --text hi --json',
  ],
  wat: ['greentic-component wat echo.wat', 'greentic-component wat echo.wat -o dist/echo.wasm'],
};

export const MANIFEST = 'greentic-component.json';

export interface CliIO {
  out(line: string): void;
  err(line: string): void;
}

const processIO: CliIO = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

/** The runner's worlds, or `upstream`: upstream's greentic:component@0.6.0 node (wit/upstream/). */
export type ProjectWorld = WorldVersion | 'upstream';
const PROJECT_WORLDS: readonly ProjectWorld[] = [...WORLD_VERSIONS, 'upstream'];

/** `greentic-component.json`: what `build` needs to know about a project. */
export interface ComponentManifest {
  name: string;
  version: string;
  world: ProjectWorld;
  /** Entry module, relative to the project. */
  source: string;
  /** WIT folder, relative to the project. */
  wit: string;
  worldName: string;
  /** componentize-js features left out of the engine (WASI interfaces the component does not use). */
  disableFeatures?: ComponentizeFeature[];
}

const NAME = /^[a-z][a-z0-9_-]{0,62}$/;

class CliFailure extends GreenticError {
  constructor(code: string, message: string) {
    super(code, message, 400);
  }
}

/** Nest's logger, to stderr: component log lines always, the runner's own from `warn` up. */
class StderrLogger extends ConsoleLogger {
  constructor(
    private readonly io: CliIO,
    private readonly showAll: boolean,
  ) {
    super('greentic-component', { timestamp: false });
  }

  protected override printMessages(messages: unknown[], context = '', logLevel: LogLevel = 'log'): void {
    const loud = logLevel === 'warn' || logLevel === 'error' || logLevel === 'fatal';
    if (!this.showAll && !loud && context !== 'Component') return;
    const parts = messages.map((m) => (typeof m === 'string' ? m : JSON.stringify(m, jsonSafe)));
    this.io.err(`[${logLevel}] ${context ? `${context}: ` : ''}${parts.join(' ')}`);
  }
}

function jsonSafe(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('base64') };
  return v;
}

async function readJsonArg(value: string, what: string): Promise<unknown> {
  const text = value.startsWith('@')
    ? await readFile(value.slice(1), 'utf8').catch(unreadable(value.slice(1)))
    : value;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CliFailure('cli_bad_json', `${what} is not JSON: ${(e as Error).message}`);
  }
}

function unreadable(file: string): (e: Error) => never {
  return (e) => {
    throw new CliFailure('cli_file_unreadable', `${file}: ${e.message}`);
  };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

async function readManifest(dir: string): Promise<ComponentManifest> {
  const file = join(dir, MANIFEST);
  const raw = await readFile(file, 'utf8').catch(() => {
    throw new CliFailure(
      'cli_not_a_project',
      `${dir}: no ${MANIFEST} (create a project with 'greentic-component new')`,
    );
  });
  const m = JSON.parse(raw) as Partial<ComponentManifest>;
  if (!m.name || !m.source || !m.wit || !m.world || !PROJECT_WORLDS.includes(m.world)) {
    throw new CliFailure(
      'cli_bad_manifest',
      `${file}: needs name, world (${PROJECT_WORLDS.join(', ')}), source and wit`,
    );
  }
  return { version: '0.1.0', worldName: 'component', ...m } as ComponentManifest;
}

async function loadSpec(file: string): Promise<ComponentSpec> {
  const bytes = new Uint8Array(await readFile(file).catch(unreadable(file)));
  const problem = notAComponent(bytes);
  if (problem) throw new ComponentLoadError(`${file} ${problem}`);
  return { name: basename(file, extname(file)), version: '0.0.0', bytes };
}

/** Engine features a Greentic component does not need: it reaches HTTP through the host's imports. */
export const DEFAULT_DISABLED_FEATURES: readonly ComponentizeFeature[] = ['http', 'fetch-event'];

/** The project's tsconfig.json: editor types for the SDK and the WIT imports (the build only strips types). */
function projectTsconfig(): unknown {
  const sdk = join(SDK_DIR, 'src');
  return {
    compilerOptions: {
      target: 'ES2022',
      module: 'ESNext',
      moduleResolution: 'Bundler',
      lib: ['ES2022', 'DOM'],
      types: [],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      paths: {
        '@greentic/component-sdk': [join(sdk, 'index.ts')],
        '@greentic/component-sdk/host': [join(sdk, 'host.ts')],
        '@greentic/component-sdk/upstream-host': [join(sdk, 'upstream-host.ts')],
        '@greentic/component-sdk/upstream-host/*': [join(sdk, 'upstream', '*')],
        '@greentic/component-sdk/cbor': [join(sdk, 'cbor.ts')],
      },
    },
    include: [COMPONENT_SOURCE, join(sdk, 'wit-imports.d.ts')],
  };
}

const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

function progressLine(name: string, p: BuildProgress): string {
  switch (p.step) {
    case 'bundle':
      return `[${name}] bundle       ${p.modules} module(s) + ${p.sdkModules} SDK module(s), ${(p.bytes / 1024).toFixed(1)} KiB in ${p.ms.toFixed(0)} ms`;
    case 'cache':
      return p.hit
        ? `[${name}] cache        hit ${p.key.slice(0, 16)} (${p.path})`
        : `[${name}] cache        miss ${p.key.slice(0, 16)}: componentizing (25-55 s)`;
    case 'componentize':
      return `[${name}] componentize ${p.done ? 'done in' : 'running,'} ${(p.elapsedMs / 1000).toFixed(1)} s`;
    case 'done':
      return `[${name}] done         ${mib(p.bytes)} MiB${p.cached ? ' (from cache)' : ''} in ${(p.ms / 1000).toFixed(1)} s`;
  }
}

interface BuildFlags {
  out?: string;
  cacheDir?: string;
  quiet?: boolean;
  watch?: boolean;
  json?: boolean;
}

/** One build of a project: bundle, componentize (or the cache), copy to `--out`, check the world. */
async function buildProject(
  dir: string,
  m: ComponentManifest,
  o: BuildFlags,
  io: CliIO,
  runtime: PooledComponentRuntime,
): Promise<void> {
  const built = await buildComponent({
    sourcePath: join(dir, m.source),
    witPath: join(dir, m.wit),
    worldName: m.worldName,
    cacheDir: o.cacheDir ?? componentCacheDir(),
    ...(m.disableFeatures ? { disableFeatures: m.disableFeatures } : {}),
    ...(o.quiet ? {} : { onProgress: (p: BuildProgress) => io.err(progressLine(m.name, p)) }),
  }).catch((e: Error) => {
    throw new ComponentLoadError(`build of '${m.name}' failed: ${e.message}`);
  });
  const out = resolve(o.out ?? join(dir, 'dist', `${m.name}.wasm`));
  await mkdir(dirname(out), { recursive: true });
  // Written next to the target and renamed over it, so a runner watching the folder never reads half a file.
  const tmp = `${out}.tmp-${process.pid}`;
  await copyFile(built.path, tmp);
  await rename(tmp, out);
  const prepared = await runtime.prepare({
    name: m.name,
    version: m.version,
    bytes: new Uint8Array(await readFile(out)),
  });
  const expected = m.world === '0.1' ? 'greentic:component@0.1.0' : 'greentic:component@0.6.0';
  if (prepared.world !== expected) {
    throw new ComponentLoadError(
      `${m.name}: ${MANIFEST} says ${expected} but the component implements ${prepared.world}`,
    );
  }
  if (o.json) {
    io.out(
      JSON.stringify({
        ok: true,
        name: m.name,
        file: relative(process.cwd(), out),
        size: built.bytes,
        cached: built.cached,
        world: prepared.world,
        operations: prepared.operations.map((op) => op.name),
      }),
    );
    return;
  }
  io.out(
    `${built.cached ? 'cached' : 'built'} ${relative(process.cwd(), out)} (${mib(built.bytes)} MiB, ${prepared.world}, ${prepared.operations.length} operation(s))`,
  );
}

const WATCH_DEBOUNCE_MS = 200;

/**
 * `build --watch`: the project folder (minus dist/, node_modules/ and dot folders) and the SDK,
 * recursively; a burst of events rebuilds once, and a change during a build queues one more.
 * A failed build is reported and the watch goes on. Ends when `signal` aborts (Ctrl-C in the CLI).
 */
async function watchProject(
  dir: string,
  m: ComponentManifest,
  io: CliIO,
  signal: AbortSignal | undefined,
  build: () => Promise<void>,
): Promise<void> {
  const stop = signal ?? sigintSignal();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = build()
      .catch((e: Error) => io.err(`error: ${e.message}`))
      .finally(() => {
        running = undefined;
        if (again && !stop.aborted) {
          again = false;
          run();
        }
      });
  };
  const ignored = (file: string | null): boolean =>
    file !== null &&
    file.split(/[\\/]/).some((seg) => seg === 'dist' || seg === 'node_modules' || seg.startsWith('.'));
  const onChange = (_event: string, file: string | null): void => {
    if (ignored(file) || stop.aborted) return;
    clearTimeout(timer);
    timer = setTimeout(run, WATCH_DEBOUNCE_MS);
  };
  const watchers = [dir, SDK_DIR].map((d) => watch(d, { recursive: true }, onChange));
  io.err(`[${m.name}] watching ${relative(process.cwd(), dir) || '.'} and the component SDK (Ctrl-C stops)`);
  await new Promise<void>((done) => {
    if (stop.aborted) return done();
    stop.addEventListener('abort', () => done(), { once: true });
  });
  clearTimeout(timer);
  for (const w of watchers) w.close();
  await running;
}

function sigintSignal(): AbortSignal {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  return ac.signal;
}

export interface RunCliOptions {
  /** Ends `build --watch` (the CLI: Ctrl-C). */
  signal?: AbortSignal;
}

export async function runCli(
  argv: readonly string[],
  io: CliIO = processIO,
  options: RunCliOptions = {},
): Promise<number> {
  const program = new Command('greentic-component')
    .description('Create, build, inspect and run Greentic WebAssembly components')
    .option('-v, --verbose', "show the runner's own log lines")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
  let runtime: PooledComponentRuntime | undefined;
  const useLogger = (): void => {
    Logger.overrideLogger(new StderrLogger(io, program.opts<{ verbose?: boolean }>().verbose === true));
  };

  program
    .command('new')
    .description(
      `create a TypeScript component project: ${COMPONENT_SOURCE} (using @greentic/component-sdk), wit/, tsconfig.json and ${MANIFEST}`,
    )
    .argument('<name>', 'component name (lower case, digits, - and _)')
    .addOption(
      new Option('--world <version>', "Greentic world (upstream: upstream's 0.6.0 node and host interfaces)")
        .choices([...PROJECT_WORLDS])
        .default('0.6'),
    )
    .option('--dir <parent>', 'where to create the project folder', '.')
    .option('--force', 'write into an existing, non-empty folder')
    .action(async (name: string, o: { world: ProjectWorld; dir: string; force?: boolean }) => {
      if (!NAME.test(name))
        throw new CliFailure('cli_bad_name', `'${name}' is not a component name (a-z, 0-9, - and _)`);
      const dir = resolve(o.dir, name);
      if (!o.force && existsSync(dir) && (await readdir(dir)).length > 0) {
        throw new CliFailure('cli_file_exists', `${dir}: exists and is not empty (use --force)`);
      }
      await mkdir(dir, { recursive: true });
      const packageName = `local:${name.replace(/_/g, '-')}`;
      const wit =
        o.world === 'upstream'
          ? await writeUpstreamWitProject(join(dir, 'wit'), {
              packageName,
              imports: ['state', 'http', 'secrets'],
            })
          : await writeWitProject(join(dir, 'wit'), { world: o.world, packageName });
      const manifest: ComponentManifest = {
        name,
        version: '0.1.0',
        world: o.world,
        source: COMPONENT_SOURCE,
        wit: 'wit',
        worldName: wit.worldName,
        disableFeatures: [...DEFAULT_DISABLED_FEATURES],
      };
      await writeFile(join(dir, COMPONENT_SOURCE), componentSource(name, o.world));
      await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(projectTsconfig(), null, 2) + '\n');
      await writeFile(join(dir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
      await writeFile(join(dir, '.gitignore'), 'dist/\n');
      io.out(
        `created ${relative(process.cwd(), dir) || '.'} (${
          o.world === 'upstream'
            ? "upstream's greentic:component@0.6.0 + state-store, http-client, secrets-store"
            : `greentic:component@${o.world === '0.1' ? '0.1.0' : '0.6.0'} + greentic:host`
        })`,
      );
      for (const f of [COMPONENT_SOURCE, 'tsconfig.json', MANIFEST, ...wit.files.map((x) => join('wit', x))])
        io.out(`  ${f}`);
      io.out(`next: greentic-component build ${relative(process.cwd(), dir) || '.'}`);
    });

  program
    .command('build')
    .description(
      'bundle the project with the component SDK, componentize it (cached per machine by inputs) and check its world',
    )
    .argument('[dir]', 'project folder', '.')
    .option('-o, --out <file>', 'output .wasm (default <dir>/dist/<name>.wasm)')
    .option(
      '--cache-dir <dir>',
      'build cache (default $GREENTIC_CACHE_DIR, $XDG_CACHE_HOME/greentic or ~/.cache/greentic)',
    )
    .option('-q, --quiet', 'no progress lines, only the result')
    .option('--json', 'print the result as JSON (one line per build; progress stays on stderr)')
    .option(
      '-w, --watch',
      "rebuild when the source, its WIT or the SDK changes (with -o into a pack directory served by 'greentic-runner start --pack <dir>', the runner reloads the pack)",
    )
    .action(async (dirArg: string, o: BuildFlags) => {
      useLogger();
      const dir = resolve(dirArg);
      const m = await readManifest(dir);
      runtime = new PooledComponentRuntime({ settings: { minWorkers: 0, maxWorkers: 1 } });
      const build = (): Promise<void> => buildProject(dir, m, o, io, runtime!);
      if (!o.watch) return build();
      await build().catch((e: Error) => io.err(`error: ${e.message}`));
      await watchProject(dir, m, io, options.signal, build);
    });

  program
    .command('describe')
    .description("a component's world, exports, imports and operations")
    .argument('<file>', 'component .wasm')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      useLogger();
      runtime = new PooledComponentRuntime({ settings: { minWorkers: 0, maxWorkers: 1 } });
      const spec = await loadSpec(file);
      const p = await runtime.prepare(spec);
      const imports = runtime.componentInfo(p.digest)?.imports ?? [];
      if (o.json) {
        io.out(
          JSON.stringify(
            { file, digest: p.digest, world: p.world, exports: p.exports, imports, operations: p.operations },
            null,
            2,
          ),
        );
        return;
      }
      io.out(`${file}`);
      io.out(`  world:      ${p.world}`);
      io.out(`  digest:     sha256:${p.digest}`);
      io.out(`  exports:    ${p.exports.join(', ')}`);
      io.out(`  imports:    ${imports.length ? imports.join(', ') : '(none)'}`);
      io.out('  operations:');
      for (const op of p.operations) {
        const summary = op.summary ? `  ${op.summary}` : '';
        io.out(
          `    ${op.name}${summary}${op.inputSchema ? `  input ${JSON.stringify(op.inputSchema)}` : ''}`,
        );
      }
    });

  program
    .command('run')
    .description(
      "one call through the runner's worker pool (deadline, memory cap and host imports as in production)",
    )
    .argument('<file>', 'component .wasm')
    .option('--op <operation>', 'operation (0.1: execute; 0.6: default the first described)')
    .option('--name <component>', 'the name a pack gives the component (its state is kept under it)')
    .option('--input <json>', 'input as JSON, or @file')
    .option('--text <text>', 'the message text (0.1 content when no input)', '')
    .option('--tenant <tenant/env>', 'tenant and env of the call', 'local/dev')
    .option('--secret <name=value>', 'a secret the call may read (repeatable)', collect, [])
    .option('--allow-host <host>', 'a host http.fetch / http-client may reach (repeatable)', collect, [])
    .option('--assets <dir>', "a pack's assets directory, visible read-only at / (WASI)")
    .option('--locale <locale>', "the message locale (the 0.6 envelope's i18n-id)")
    .option('--state <json>', 'session data before the call (JSON object, or @file)')
    .option('--show-state', 'print the session data after the call (to stderr)')
    .option('--deadline-ms <ms>', 'call deadline', positiveInt, 10_000)
    .option('--memory-mb <mb>', 'linear memory cap', positiveInt, 128)
    .option('--json', 'print {ok, component, operation, ms, result, state} instead of the bare result')
    .action(
      async (
        file: string,
        o: {
          op?: string;
          name?: string;
          input?: string;
          text: string;
          tenant: string;
          secret: string[];
          allowHost: string[];
          assets?: string;
          locale?: string;
          state?: string;
          showState?: boolean;
          deadlineMs: number;
          memoryMb: number;
          json?: boolean;
        },
      ) => {
        useLogger();
        const [tenantId = 'local', envId = 'dev'] = o.tenant.split('/');
        const secrets = new Map<string, string>();
        for (const s of o.secret) {
          const at = s.indexOf('=');
          if (at <= 0) throw new CliFailure('cli_bad_secret', `--secret ${s}: expected name=value`);
          secrets.set(s.slice(0, at), s.slice(at + 1));
        }
        runtime = new PooledComponentRuntime({
          settings: { minWorkers: 0, maxWorkers: 1, deadlineMs: o.deadlineMs, memoryMb: o.memoryMb },
          host: {
            secrets: { get: async (_t, name) => secrets.get(name) },
            httpPolicy: () =>
              o.allowHost.length ? { ...DEFAULT_HTTP_POLICY, allow: o.allowHost } : undefined,
          },
        });
        const spec = await loadSpec(file);
        if (o.name) spec.name = o.name;
        if (o.assets) {
          if (!existsSync(o.assets))
            throw new CliFailure('cli_file_unreadable', `--assets ${o.assets}: no such directory`);
          spec.assetsDir = resolve(o.assets);
        }
        const p: PreparedComponent = await runtime.prepare(spec);
        const operation = o.op ?? p.operations[0]?.name ?? 'execute';
        if (!p.operations.some((x) => x.name === operation) && p.operations.length > 0) {
          throw new CliFailure(
            'cli_unknown_operation',
            `${file} has no operation '${operation}' (it has: ${p.operations.map((x) => x.name).join(', ')})`,
          );
        }
        const input = o.input === undefined ? undefined : await readJsonArg(o.input, '--input');
        const session = o.state === undefined ? {} : await readJsonArg(o.state, '--state');
        if (session === null || typeof session !== 'object' || Array.isArray(session)) {
          throw new CliFailure('cli_bad_state', '--state must be a JSON object');
        }
        const ctx: ComponentCallContext = {
          flowId: 'cli',
          nodeId: 'run',
          messageId: `cli-${Date.now()}`,
          userId: 'cli',
          sessionKey: `${tenantId}:cli:${process.pid}:cli`,
          text: o.text,
          allowedSecrets: [...secrets.keys()],
          session: session as Record<string, unknown>,
          ...(o.locale ? { locale: o.locale } : {}),
        };
        const started = performance.now();
        const result = await runtime.invoke(
          { tenantId, envId },
          { component: p, operation, input, ctx, deadlineMs: o.deadlineMs },
        );
        const ms = performance.now() - started;
        if (o.json) {
          io.out(
            JSON.stringify(
              { ok: true, component: p.name, operation, ms, result: result ?? null, state: ctx.session },
              jsonSafe,
            ),
          );
          return;
        }
        io.err(`ok: ${p.name} ${operation} in ${ms.toFixed(1)} ms`);
        io.out(JSON.stringify(result ?? null, jsonSafe, 2));
        if (o.showState) io.err(`state: ${JSON.stringify(ctx.session)}`);
      },
    );

  program
    .command('wat')
    .description('assemble a component in text format (WAT) with jco (cached by source hash)')
    .argument('<file>', '.wat file')
    .option('-o, --out <file>', 'output .wasm (default: next to the .wat)')
    .action(async (file: string, o: { out?: string }) => {
      useLogger();
      if (!existsSync(file)) throw new CliFailure('cli_file_unreadable', `${file}: no such file`);
      const built = await assembleWatFile(file).catch((e: Error) => {
        throw new ComponentLoadError(e.message);
      });
      const out = resolve(o.out ?? join(dirname(file), `${basename(file, extname(file))}.wasm`));
      await mkdir(dirname(out), { recursive: true });
      await copyFile(built, out);
      io.out(`assembled ${relative(process.cwd(), out)} (${(await readFile(out)).length} bytes)`);
    });

  applyCliConventions(program, EXAMPLES, io.out);

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) return commanderExitCode(e);
    const err = e as Error;
    const code = e instanceof GreenticError ? e.code : undefined;
    if (argv.includes('--json'))
      io.out(JSON.stringify({ ok: false, ...(code ? { code } : {}), error: err.message }));
    io.err(code ? `error [${code}]: ${err.message}` : `error: ${err.message}`);
    if (e instanceof ComponentLoadError) return EXIT_INVALID;
    if (e instanceof CliFailure) return EXIT_USAGE;
    if (e instanceof GreenticError) return EXIT_CALL_FAILED;
    // Anything else is I/O around the command (a build tool that is missing, a full disk).
    return EXIT_USAGE;
  } finally {
    await runtime?.close();
  }
}
