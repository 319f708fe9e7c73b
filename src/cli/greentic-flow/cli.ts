import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import {
  applyCliConventions,
  CliExit,
  commanderExitCode,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
} from '../common/cli-conventions.js';
import { checkFlow } from '../../flows/flow-validator.js';
import { renderFlowGraph, type GraphFormat } from '../../flows/flow-graph.js';
import { formatIssue, type FlowIssue } from '../../flows/flow.types.js';
import { parseFlowSource } from '../../flows/ygtc-loader.js';
import { withComponentDescriber } from '../greentic-pack/describe-components.js';
import { jsonSchemaText } from './json-schemas.js';
import { flowTemplate, TEMPLATE_NAMES, type TemplateName } from './templates.js';
import { rel, validatePaths } from './validate-files.js';

/** Exit codes (docs/cli.md): 0 ok (warnings allowed), 1 a flow has errors, 2 usage or I/O problem. */
export { EXIT_OK, EXIT_USAGE };
export const EXIT_INVALID = EXIT_FAILED;

export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

const processIO: CliIO = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : t + '\n'),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
};

const FLOW_ID = /^[A-Za-z0-9_-]+$/;

/** Writes via a temp file and rename, so a watcher never sees half a file. */
async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

const EXAMPLES = {
  '': ['greentic-flow validate flows/', 'greentic-flow new support -t qa', 'greentic-flow completion bash'],
  validate: [
    'greentic-flow validate flows/main.ygtc',
    'greentic-flow validate packs/support --strict',
    'greentic-flow validate flows/ --json > report.json',
  ],
  graph: [
    'greentic-flow graph flows/main.ygtc -o main.svg',
    'greentic-flow graph flows/main.ygtc -f mermaid',
  ],
  new: ['greentic-flow new support', 'greentic-flow new nightly -t timer -o flows/'],
  schema: [
    'greentic-flow schema -o .vscode/ygtc.schema.json',
    'greentic-flow schema --bundle -o bundle.schema.json',
  ],
};

function issueLine(i: FlowIssue): string {
  return `${formatIssue(i)} [${i.code}]`;
}

/**
 * `greentic-flow`: validate, graph, new, schema. Returns the exit code; never calls process.exit,
 * so tests run it in-process.
 */
export async function runFlowCli(
  argv: readonly string[],
  io: CliIO = processIO,
  cwd = process.cwd(),
): Promise<number> {
  const program = new Command('greentic-flow')
    .description('Author Greentic .ygtc flows: validate, draw, scaffold, and the JSON Schema for editors')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  program
    .command('validate')
    .description(
      "check flows: every issue as file:line:col; a directory with a pack.yaml is checked as a pack (its components and their declared operations, calls between its flows); loose files' component nodes are not checked",
    )
    .argument('<paths...>', '.ygtc files and/or directories')
    .option('--json', 'machine-readable report on stdout (for editors and CI)')
    .option('--strict', 'warnings count as errors')
    .action(async (paths: string[], o: { json?: boolean; strict?: boolean }) => {
      const report = await withComponentDescriber((describe) => validatePaths(paths, cwd, { describe }));
      const failed = report.errors > 0 || (o.strict === true && report.warnings > 0);
      if (o.json) {
        io.out(JSON.stringify({ ...report, ok: !failed }, null, 2));
      } else {
        for (const i of report.issues) io.out(issueLine(i));
        const n = report.files.length;
        io.out(
          `${n} file${n === 1 ? '' : 's'}: ${report.errors} error${report.errors === 1 ? '' : 's'}, ${report.warnings} warning${report.warnings === 1 ? '' : 's'}`,
        );
      }
      if (failed) throw new CliExit(EXIT_INVALID);
    });

  program
    .command('graph')
    .description('draw a flow: nodes, operations, routes and their conditions')
    .argument('<file>', '.ygtc file')
    .addOption(
      new Option('-f, --format <format>', 'output format').choices(['svg', 'dot', 'mermaid']).default('svg'),
    )
    .option('-o, --out <file>', 'write to a file instead of stdout')
    .action(async (file: string, o: { format: GraphFormat; out?: string }) => {
      const abs = path.resolve(cwd, file);
      const text = await readFile(abs, 'utf8').catch((e: NodeJS.ErrnoException) => {
        io.err(`${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
        throw new CliExit(EXIT_USAGE);
      });
      const parsed = parseFlowSource(text, rel(abs, cwd));
      if (!parsed.partial) {
        for (const i of parsed.issues) io.err(issueLine(i));
        io.err(`${file}: nothing to draw: the file does not parse as a flow`);
        throw new CliExit(EXIT_INVALID);
      }
      // Draw what parses, broken routes included (in red): that is when a picture helps most.
      for (const i of checkFlow(text, rel(abs, cwd)).issues.filter((x) => x.severity === 'error'))
        io.err(issueLine(i));
      const out = await renderFlowGraph(parsed.partial, o.format);
      if (o.out) {
        await writeAtomic(path.resolve(cwd, o.out), out);
        io.err(`wrote ${o.out} (${o.format}, ${parsed.partial.nodes.size} nodes)`);
      } else {
        io.out(out);
      }
    });

  program
    .command('new')
    .description('write a new flow from a template; it validates as written')
    .argument('<id>', 'flow id (letters, digits, _ and -); the file is <id>.ygtc')
    .addOption(
      new Option('-t, --template <name>', 'starting point').choices([...TEMPLATE_NAMES]).default('qa'),
    )
    .option('-o, --out <path>', 'directory (or .ygtc file) to write; default: the current directory')
    .option('--force', 'overwrite an existing file')
    .action(async (id: string, o: { template: TemplateName; out?: string; force?: boolean }) => {
      if (!FLOW_ID.test(id)) {
        io.err(`flow id '${id}' may hold letters, digits, '_' and '-' only (it is used in bundle bindings)`);
        throw new CliExit(EXIT_USAGE);
      }
      const target = o.out
        ? o.out.endsWith('.ygtc')
          ? path.resolve(cwd, o.out)
          : path.resolve(cwd, o.out, `${id}.ygtc`)
        : path.resolve(cwd, `${id}.ygtc`);
      if (existsSync(target) && !o.force) {
        io.err(`${rel(target, cwd)}: already exists (use --force to overwrite)`);
        throw new CliExit(EXIT_USAGE);
      }
      const text = flowTemplate(o.template, id);
      const problems = checkFlow(text, rel(target, cwd)).issues;
      if (problems.length > 0) {
        // A template that does not validate is a bug here, not the user's problem to debug.
        for (const i of problems) io.err(issueLine(i));
        throw new Error(`template '${o.template}' does not validate`);
      }
      await writeAtomic(target, text);
      io.out(`wrote ${rel(target, cwd)} (template ${o.template})`);
    });

  program
    .command('schema')
    .description(
      'print the JSON Schema of .ygtc flows, node bodies included (point your editor YAML extension at it)',
    )
    .option('--bundle', 'the JSON Schema of bundle YAML files instead')
    .option('-o, --out <file>', 'write to a file instead of stdout')
    .action(async (o: { out?: string; bundle?: boolean }) => {
      const text = jsonSchemaText(o.bundle ? 'bundle' : 'flow');
      if (o.out) {
        await writeAtomic(path.resolve(cwd, o.out), text);
        io.err(`wrote ${o.out}`);
      } else {
        io.out(text);
      }
    });

  applyCliConventions(program, EXAMPLES, io.out);

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CliExit) return e.code;
    if (e instanceof CommanderError) return commanderExitCode(e);
    io.err(`greentic-flow: ${(e as Error).message}`);
    return EXIT_USAGE;
  }
}
