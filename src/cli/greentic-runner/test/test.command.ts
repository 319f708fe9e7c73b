import { Logger } from '@nestjs/common';
import type { Command } from 'commander';
import { GreenticError } from '../../../common/errors.js';
import type { NodeTrace } from '../../../flows/flow-run.types.js';
import { formatIssue } from '../../../flows/flow.types.js';
import { loadTestPack, runConversation, type TurnReport } from './conversation-harness.js';
import { loadScript } from './conversation-script.js';
import { replyLine, show } from './expectations.js';

export interface TestIO {
  out(line: string): void;
  err(line: string): void;
}

/** 0: every turn as scripted; 1: a turn differed (or failed, or ran over its limit); 2: the pack or script is unusable. */
export const TEST_EXIT_PASS = 0;
export const TEST_EXIT_MISMATCH = 1;
export const TEST_EXIT_UNUSABLE = 2;

const MAX_VALUE = 70;

function brief(v: unknown): string {
  if (v === undefined) return '-';
  const s = show(v);
  return s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE - 1)}…` : s;
}

export function nodeLine(t: NodeTrace): string {
  const where = t.flowId ? `${'  '.repeat(t.depth ?? 1)}${t.flowId}/${t.nodeId}` : t.nodeId;
  const status = t.ok ? '' : `  ✗ ${t.error}`;
  const attempts = t.attempts ? ` (${t.attempts} attempts)` : '';
  return `    ${where.padEnd(24)} ${t.operation.padEnd(22)} ${t.durationMs.toFixed(1).padStart(7)} ms  in: ${brief(t.input)}  out: ${brief(t.output)}${attempts}${status}`;
}

function printTurn(io: TestIO, r: TurnReport): void {
  const { turn, result } = r;
  const said = turn.user !== '' ? show(turn.user) : `action ${show(turn.action)}`;
  io.out(`turn ${turn.index}  > ${said}`);
  for (const t of result?.trace ?? []) io.out(nodeLine(t));
  for (const reply of result?.replies ?? []) io.out(`    < ${replyLine(reply)}`);
  if (r.mismatch) {
    io.out(
      `  ✗ turn ${turn.index} (${turn.loc.file}:${turn.loc.line}:${turn.loc.column}): ${r.mismatch.headline}`,
    );
    for (const d of r.mismatch.diff) io.out(`      ${d}`);
  } else {
    const status = result
      ? `${result.status}${result.error ? ` with ${result.error.code}` : ''}`
      : 'no result';
    io.out(`  ✓ turn ${turn.index}: ${status} in ${r.elapsedMs.toFixed(1)} ms`);
  }
}

/**
 * Runs a conversation script against a pack and prints a per-node transcript. Returns the exit
 * code (TEST_EXIT_*).
 */
export async function runConversationTest(
  packTarget: string,
  scriptFile: string,
  io: TestIO,
  opts: { cacheDir?: string } = {},
): Promise<number> {
  let loaded;
  let script;
  try {
    script = await loadScript(scriptFile);
    loaded = await loadTestPack(packTarget, script, opts.cacheDir);
  } catch (e) {
    if (!(e instanceof GreenticError)) throw e;
    io.err(`greentic-runner test: ${e.message}`);
    return TEST_EXIT_UNUSABLE;
  }
  try {
    for (const w of loaded.warnings) io.err(`warning: ${w}`);
    const errors = loaded.issues.filter((i) => i.severity === 'error');
    if (errors.length > 0) {
      for (const i of errors) io.err(formatIssue(i));
      io.err(`greentic-runner test: pack '${loaded.pack.id}' has invalid flows`);
      return TEST_EXIT_UNUSABLE;
    }
    const mocked = [...script.mocks.keys()];
    io.out(
      `${script.name}: pack ${loaded.pack.id}@${loaded.pack.version}, ${script.turns.length} turns${mocked.length ? `, mocked: ${mocked.join(', ')}` : ''}`,
    );
    let report;
    try {
      report = await runConversation(script, loaded, (r) => printTurn(io, r));
    } catch (e) {
      if (!(e instanceof GreenticError)) throw e;
      io.err(`greentic-runner test: ${e.message}`);
      return TEST_EXIT_UNUSABLE;
    }
    if (report.ok) {
      io.out(`PASS ${script.name}: ${report.turns.length} turns of flow '${report.flowId}' as scripted`);
      return TEST_EXIT_PASS;
    }
    const last = report.turns[report.turns.length - 1]!;
    io.out(`FAIL ${script.name}: turn ${last.turn.index} of ${script.turns.length} did not go as scripted`);
    return TEST_EXIT_MISMATCH;
  } finally {
    await loaded.runtime.close();
  }
}

/** Adds `test <pack|dir> <script.yaml>` to the greentic-runner program. */
export function registerTestCommand(program: Command, io: TestIO, setExitCode: (code: number) => void): void {
  program
    .command('test')
    .description(
      'play a conversation script against a pack: per-node transcript, exit 1 on the first turn that differs (with a diff)',
    )
    .argument('<pack>', 'pack directory (pack.yaml) or .gtpack file')
    .argument('<script>', 'conversation script (YAML): turns, expected replies, component mocks')
    .option('--cache-dir <dir>', 'component transpile cache (GREENTIC_CACHE_DIR)')
    .action(async (pack: string, scriptFile: string, o: { cacheDir?: string }) => {
      // The transcript is the output: runtime info logs (component prepared...) would interleave with it.
      Logger.overrideLogger(['error', 'fatal']);
      setExitCode(
        await runConversationTest(pack, scriptFile, io, o.cacheDir ? { cacheDir: o.cacheDir } : {}),
      );
    });
}
