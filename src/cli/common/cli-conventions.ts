/**
 * What the four CLIs (greentic-component, -flow, -pack, -runner) share, so they behave alike:
 * `--version`, examples under every `--help`, "unknown command 'x'" with the closest match, one
 * exit-code scheme, and `completion bash|zsh|fish` (docs/cli.md).
 */
import { readFileSync } from 'node:fs';
import { Argument, type Command, type CommanderError } from 'commander';
import { completionScript, SHELLS, type Shell } from './completion.js';

/** The one exit-code scheme (docs/cli.md): 0 ok, 1 what was checked or run failed, 2 usage error. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Thrown by an action to end with a code once its message is printed. */
export class CliExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

let version: string | undefined;

/** The package's version: src/cli/common and dist/cli/common sit at the same depth under the root. */
export function cliVersion(): string {
  version ??= (
    JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  return version;
}

/**
 * Example command lines per command, keyed by the command's path below the program ('' is the
 * program itself, 'keys generate' a nested one). Every command needs at least one.
 */
export type CliExamples = Readonly<Record<string, readonly string[]>>;

/** Every command below `cmd`, with its path of names below the program. */
export function walkCommands(cmd: Command, path: readonly string[] = []): [Command, string[]][] {
  return [[cmd, [...path]], ...cmd.commands.flatMap((c) => walkCommands(c, [...path, c.name()]))];
}

/** Damerau-free edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** The closest name at most two edits away and mostly alike (commander's own rule), if any. */
export function closest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = distance(word, n);
    if (d < bestD && d <= 2 && (n.length - d) / n.length > 0.4) {
      best = n;
      bestD = d;
    }
  }
  return best;
}

/**
 * For a program whose top level also has an action (greentic-runner's `--config-explain`): commander
 * then reads a stray word as an excess argument; this reports it as the unknown command it is.
 */
export function unknownCommand(program: Command, word: string): never {
  const near = closest(
    word,
    program.commands.map((c) => c.name()),
  );
  program.error(`error: unknown command '${word}'${near ? `\n(Did you mean ${near}?)` : ''}`, {
    exitCode: EXIT_USAGE,
    code: 'commander.unknownCommand',
  });
}

/** A commander error (usage, help, version) as an exit code: 0 for help and version, else usage. */
export function commanderExitCode(e: CommanderError): number {
  return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
}

/**
 * Adds `--version`, `completion <shell>`, suggestions and the examples to a fully built program.
 * Throws when a command has no examples, so a new command cannot ship without them.
 */
export function applyCliConventions(
  program: Command,
  examples: CliExamples,
  out: (text: string) => void,
): void {
  const name = program.name();
  program.version(cliVersion(), '-V, --version', 'print the version');
  program
    .command('completion')
    .description('print a shell completion script for bash, zsh or fish')
    .addArgument(new Argument('<shell>', 'the shell').choices([...SHELLS]))
    .action((shell: Shell) => out(completionScript(program, shell)));
  const all: Record<string, readonly string[]> = {
    ...examples,
    completion: [
      `${name} completion bash > ~/.local/share/bash-completion/completions/${name}`,
      `${name} completion zsh > "\${fpath[1]}/_${name}"`,
      `${name} completion fish > ~/.config/fish/completions/${name}.fish`,
    ],
  };
  for (const [cmd, path] of walkCommands(program)) {
    const key = path.join(' ');
    const lines = all[key];
    if (!lines?.length) throw new Error(`${name}: no help examples for '${key || '(program)'}'`);
    cmd.showSuggestionAfterError(true);
    cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}`);
  }
}
