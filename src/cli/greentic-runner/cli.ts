import 'reflect-metadata';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Type } from '@nestjs/common';
import { Command, CommanderError, Option } from 'commander';
import {
  applyCliConventions,
  commanderExitCode,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  unknownCommand,
} from '../common/cli-conventions.js';
import { explainConfig, formatExplanation } from './config-explain.js';
import { registerTestCommand } from './test/test.command.js';
import { validateBundle } from './validate.js';

export interface CliIO {
  out(line: string): void;
  err(line: string): void;
}

const processIO: CliIO = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

/** Flags that map to config keys; they win over the environment. */
interface StartFlags {
  port?: string;
  host?: string;
  bundle?: string;
  /** `start --pack`: serve one pack without a bundle file. */
  pack?: string;
  /** `start --pack <dir> --watch-component <project...>`: build and rebuild these into the pack. */
  watchComponent?: string[];
  bus?: string;
  sessions?: string;
  logLevel?: string;
  configExplain?: boolean;
  json?: boolean;
}

function flagsToConfig(f: StartFlags): Record<string, string | undefined> {
  return {
    PORT: f.port,
    HOST: f.host,
    GREENTIC_BUNDLE: f.bundle,
    GREENTIC_BUS: f.bus,
    GREENTIC_SESSIONS: f.sessions,
    LOG_LEVEL: f.logLevel,
  };
}

function addStartOptions(cmd: Command): Command {
  return cmd
    .option('--port <port>', 'HTTP port (PORT)')
    .option('--host <host>', 'listen address (HOST)')
    .option('--bundle <file>', 'bundle YAML (GREENTIC_BUNDLE)')
    .addOption(new Option('--bus <kind>', 'message bus (GREENTIC_BUS)').choices(['memory', 'nats']))
    .addOption(
      new Option('--sessions <kind>', 'session store (GREENTIC_SESSIONS)').choices(['memory', 'redis']),
    )
    .addOption(
      new Option('--log-level <level>', 'LOG_LEVEL').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .option(
      '--config-explain',
      'print the effective configuration with the source of each value (credentials masked) and exit',
    )
    .option('--json', 'with --config-explain: JSON instead of a table');
}

/**
 * `--provider-module <specifier>[#Export]`: a file path (relative to the working directory) or a
 * package name. Without `#Export`, every exported class whose name ends in `Module`.
 */
export async function loadProviderModules(specs: readonly string[], cwd = process.cwd()): Promise<Type[]> {
  const out: Type[] = [];
  for (const spec of specs) {
    const hash = spec.lastIndexOf('#');
    const target = hash > 0 ? spec.slice(0, hash) : spec;
    const name = hash > 0 ? spec.slice(hash + 1) : undefined;
    const isPath = target.startsWith('.') || path.isAbsolute(target);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(isPath ? pathToFileURL(path.resolve(cwd, target)).href : target)) as Record<
        string,
        unknown
      >;
    } catch (e) {
      throw new Error(`--provider-module ${spec}: cannot import: ${(e as Error).message}`, { cause: e });
    }
    const picked = Object.entries(mod).filter(
      ([k, v]) => typeof v === 'function' && (name !== undefined ? k === name : k.endsWith('Module')),
    );
    if (picked.length === 0)
      throw new Error(
        `--provider-module ${spec}: ${name !== undefined ? `no export '${name}'` : 'exports no class named *Module'}`,
      );
    out.push(...picked.map(([, v]) => v as Type));
  }
  return out;
}

const EXAMPLES = {
  '': [
    'greentic-runner start --bundle bundle.yaml',
    'greentic-runner validate bundle.yaml',
    'greentic-runner --config-explain',
  ],
  start: [
    'greentic-runner start --bundle bundle.yaml --port 8080',
    'greentic-runner start --pack support-1.0.0.gtpack',
    'greentic-runner start --pack packs/support --watch-component components/greeter',
    'greentic-runner start --config-explain --json',
  ],
  validate: [
    'greentic-runner validate bundle.yaml',
    'greentic-runner validate bundle.yaml --json',
    'greentic-runner validate bundle.yaml --provider-module ./providers/acme.js#AcmeModule',
  ],
  test: [
    'greentic-runner test packs/support tests/greeting.yaml',
    'greentic-runner test support-1.0.0.gtpack tests/greeting.yaml --json',
    'greentic-runner test packs/support tests/greeting.yaml --junit reports/greeting.xml',
  ],
  chat: [
    'greentic-runner chat --pack packs/support',
    'greentic-runner chat --bundle bundle.yaml --channel acme/dev/default/web --trace',
  ],
  schema: ['greentic-runner schema > bundle.schema.json', 'greentic-runner schema --flow > ygtc.schema.json'],
};

export interface RunCliOptions {
  io?: CliIO;
  env?: NodeJS.ProcessEnv;
  /** Starts the runner; injected so tests can run everything but the server. */
  start?: (config: Record<string, string | undefined>) => Promise<void>;
  /** Ends `start --watch-component`'s rebuilds (tests; the CLI runs them until the process ends). */
  signal?: AbortSignal;
}

/**
 * `greentic-runner start | validate <bundle> | --config-explain`. Answers the exit code; `start`
 * answers once the server listens (the process then lives until SIGTERM).
 */
export async function runCli(argv: string[], opts: RunCliOptions = {}): Promise<number> {
  const io = opts.io ?? processIO;
  const env = opts.env ?? process.env;
  let code = 0;

  const explain = (flags: StartFlags): number => {
    try {
      const x = explainConfig(env, flagsToConfig(flags));
      if (flags.json) io.out(JSON.stringify(x, null, 2));
      else for (const l of formatExplanation(x)) io.out(l);
      return x.bundleError ? EXIT_FAILED : EXIT_OK;
    } catch (e) {
      io.err(`greentic-runner: ${(e as Error).message}`);
      return EXIT_FAILED;
    }
  };

  const program = addStartOptions(
    new Command('greentic-runner')
      .description('Greentic runner: hosts flows whose steps are WebAssembly components')
      .exitOverride()
      // Options after a subcommand belong to it (start and the program share their option names).
      .enablePositionalOptions()
      // The top level has an action (--config-explain): a stray word is an unknown command, said so below.
      .allowExcessArguments(true)
      .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) }),
  );
  program.action((flags: StartFlags) => {
    if (program.args[0] !== undefined) unknownCommand(program, program.args[0]);
    if (flags.configExplain) code = explain(flags);
    else {
      program.outputHelp({ error: true });
      code = EXIT_USAGE;
    }
  });

  addStartOptions(
    program
      .command('start')
      .description('start the runner (HTTP + bus consumers) until SIGTERM')
      .addOption(
        new Option(
          '--pack <file>',
          'serve this .gtpack (or pack directory) alone: tenant local, env dev, channels web and webchat, dev trust policy',
        ).conflicts('bundle'),
      )
      .option(
        '--watch-component <project...>',
        'with --pack <dir>: build these greentic-component projects into the pack, then rebuild on every change (the runner reloads the pack)',
      ),
  ).action(async (flags: StartFlags) => {
    if (flags.configExplain) {
      code = explain(flags);
      return;
    }
    const watched = flags.watchComponent?.length
      ? await import('./watch-components.js').then(async (w) => {
          const list = await w.resolveWatchedComponents(flags.pack ?? '', flags.watchComponent!);
          return (await w.buildWatchedComponents(list, io)) ? { w, list } : undefined;
        })
      : undefined;
    if (flags.watchComponent?.length && !watched) {
      code = 2;
      return;
    }
    // A failure is printed as one line per problem; the exit code says config (1) or unreachable (2).
    const { runStart } = await import('./start.js');
    code = await runStart(flagsToConfig(flags), {
      env,
      err: io.err,
      ...(opts.start ? { start: opts.start } : {}),
      ...(flags.pack !== undefined && !opts.start
        ? { start: async (c) => (await import('./pack-start.js')).startPackRunner(flags.pack!, c, io) }
        : {}),
    });
    if (watched && code === 0) {
      // The watches end with the runner's shutdown signal (or opts.signal), so their file watchers
      // do not keep the process alive.
      let signal = opts.signal;
      if (!signal) {
        const ac = new AbortController();
        for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => ac.abort());
        signal = ac.signal;
      }
      void watched.w.watchComponents(watched.list, io, signal);
    }
  });

  program
    .command('validate')
    .description('check a bundle, its packs and flows without starting')
    .argument('<bundle>', 'bundle YAML file')
    .option('--json', 'JSON report')
    .option(
      '--provider-module <specifier...>',
      'custom provider module(s) the runner is started with (file or package, optionally #ExportName), so their channels validate',
      [],
    )
    .action(async (bundle: string, o: { json?: boolean; providerModule: string[] }) => {
      if (!existsSync(bundle)) {
        // A path on the command line that is not there is a usage error, as in the other tools.
        io.err(`greentic-runner: ${bundle}: no such file`);
        code = EXIT_USAGE;
        return;
      }
      const providerModules = await loadProviderModules(o.providerModule);
      const r = await validateBundle(bundle, { providerModules });
      if (o.json) io.out(JSON.stringify(r, null, 2));
      else {
        io.out(`bundle ${r.bundle}: ${r.ok ? 'valid' : 'INVALID'}`);
        for (const t of r.tenants) {
          io.out(`  tenant ${t.id} (secrets: ${t.secretsBackend})`);
          for (const c of t.channels) io.out(`    channel ${c}`);
        }
        if (r.providers.length > 0) io.out(`  providers: ${r.providers.join(', ')}`);
        for (const p of r.packs) {
          io.out(
            `  pack ${p.tenant}/${p.pack}: ${p.version ? `${p.version} ${p.digest ?? ''}`.trim() : 'not loaded'}${p.error ? ` — ${p.error}` : ''}`,
          );
          for (const w of p.warnings) io.out(`    warning: ${w}`);
        }
        for (const w of r.warnings) io.err(`warning: ${w}`);
        for (const p of r.problems) io.err(`error: ${p}`);
        if (r.error) io.err(`error: ${r.error}`);
      }
      code = r.ok ? EXIT_OK : EXIT_FAILED;
    });

  registerTestCommand(program, io, (c) => (code = c));

  program
    .command('chat')
    .description(
      'talk to a flow from the terminal, over the same path as a webhook message (the runner starts in this process: memory bus and sessions); cards show as text; /quit or Ctrl-D leaves',
    )
    .option('--pack <file>', 'a .gtpack or pack directory: chat on its web channel (tenant local, env dev)')
    .option('--bundle <file>', 'a bundle YAML; with --channel')
    .option('--channel <tenant/env/team/channel>', 'the bundle channel (provider: webhook) to talk to')
    .option('--user <id>', 'the user id the messages come from', 'chat-user')
    .option('--trace', "print each message's per-node transcript (as greentic-runner test does)")
    .action(
      async (o: { pack?: string; bundle?: string; channel?: string; user: string; trace?: boolean }) => {
        const { runChat } = await import('./chat.js');
        code = await runChat(o, io);
      },
    );

  program
    .command('schema')
    .description('print the JSON Schema of bundle YAML files (or, with --flow, of .ygtc flows) for editors')
    .option('--flow', 'the JSON Schema of .ygtc flows instead')
    .action(async (o: { flow?: boolean }) => {
      const { jsonSchemaText } = await import('../greentic-flow/json-schemas.js');
      io.out(jsonSchemaText(o.flow ? 'flow' : 'bundle').trimEnd());
    });

  applyCliConventions(program, EXAMPLES, io.out);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return commanderExitCode(e);
    io.err(`greentic-runner: ${(e as Error).message}`);
    return EXIT_FAILED;
  }
  return code;
}
