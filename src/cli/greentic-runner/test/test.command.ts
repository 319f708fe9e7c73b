import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Logger } from '@nestjs/common';
import type { Command } from 'commander';
import { GreenticError } from '../../../common/errors.js';
import type { NodeTrace } from '../../../flows/flow-run.types.js';
import { formatIssue } from '../../../flows/flow.types.js';
import { loadTestPack, runConversation, type TurnReport } from './conversation-harness.js';
import { loadScript } from './conversation-script.js';
import { replyLine, show } from './expectations.js';
import { junitXml, type TestRunReport } from './junit-report.js';

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
  io.out(`turn ${turn.index}  > ${said(turn)}`);
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

/** How a run reports: the transcript (default), one JSON object, and/or a JUnit XML file. */
export interface TestReportOptions {
  cacheDir?: string;
  /** Print the run as one JSON object (TestRunReport) on stdout; the transcript goes to stderr. */
  json?: boolean;
  /** Write the run as JUnit XML to this file. */
  junit?: string;
}

function said(turn: TurnReport['turn']): string {
  return turn.user !== '' ? show(turn.user) : `action ${show(turn.action)}`;
}

/**
 * Runs a conversation script against a pack and prints a per-node transcript. Returns the exit
 * code (TEST_EXIT_*).
 */
export async function runConversationTest(
  packTarget: string,
  scriptFile: string,
  io: TestIO,
  opts: TestReportOptions = {},
): Promise<number> {
  const started = performance.now();
  const report: TestRunReport = { ok: false, script: scriptFile, file: scriptFile, turns: [], ms: 0 };
  // Under --json stdout holds the JSON alone; the transcript still shows, on stderr.
  const view: TestIO = opts.json ? { out: io.err, err: io.err } : io;
  const finish = async (code: number): Promise<number> => {
    report.ok = code === TEST_EXIT_PASS;
    report.ms = performance.now() - started;
    if (opts.json) io.out(JSON.stringify(report, null, 2));
    if (opts.junit) {
      await mkdir(path.dirname(path.resolve(opts.junit)), { recursive: true });
      await writeFile(opts.junit, junitXml(report));
    }
    return code;
  };
  const unusable = (e: GreenticError | string): Promise<number> => {
    report.error = typeof e === 'string' ? e : e.message;
    view.err(`greentic-runner test: ${report.error}`);
    return finish(TEST_EXIT_UNUSABLE);
  };
  let loaded;
  let script;
  try {
    script = await loadScript(scriptFile);
    report.script = script.name;
    loaded = await loadTestPack(packTarget, script, opts.cacheDir);
  } catch (e) {
    if (!(e instanceof GreenticError)) throw e;
    return unusable(e);
  }
  try {
    report.pack = loaded.pack.id;
    report.version = loaded.pack.version;
    for (const w of loaded.warnings) view.err(`warning: ${w}`);
    const errors = loaded.issues.filter((i) => i.severity === 'error');
    if (errors.length > 0) {
      for (const i of errors) view.err(formatIssue(i));
      return await unusable(`pack '${loaded.pack.id}' has invalid flows`);
    }
    const mocked = [...script.mocks.keys()];
    view.out(
      `${script.name}: pack ${loaded.pack.id}@${loaded.pack.version}, ${script.turns.length} turns${mocked.length ? `, mocked: ${mocked.join(', ')}` : ''}`,
    );
    let run;
    try {
      run = await runConversation(script, loaded, (r) => printTurn(view, r));
    } catch (e) {
      if (!(e instanceof GreenticError)) throw e;
      return await unusable(e);
    }
    report.flow = run.flowId;
    report.turns = script.turns.map((turn) => {
      const r = run.turns.find((x) => x.turn.index === turn.index);
      const at = `${turn.loc.line}:${turn.loc.column}`;
      if (!r) return { index: turn.index, said: said(turn), outcome: 'skipped', ms: 0, at };
      const failed = r.mismatch !== undefined || r.result === undefined;
      return {
        index: turn.index,
        said: said(turn),
        outcome: failed ? 'failed' : 'passed',
        ...(r.result ? { status: r.result.status } : {}),
        ms: r.elapsedMs,
        at,
        ...(failed
          ? { failure: { message: r.mismatch?.headline ?? 'no result', diff: r.mismatch?.diff ?? [] } }
          : {}),
      };
    });
    if (run.ok) {
      view.out(`PASS ${script.name}: ${run.turns.length} turns of flow '${run.flowId}' as scripted`);
      return await finish(TEST_EXIT_PASS);
    }
    const last = run.turns[run.turns.length - 1]!;
    view.out(`FAIL ${script.name}: turn ${last.turn.index} of ${script.turns.length} did not go as scripted`);
    return await finish(TEST_EXIT_MISMATCH);
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
    .option('--json', 'print the result as one JSON object (the transcript goes to stderr)')
    .option('--junit <file>', 'also write the result as JUnit XML (one testcase per turn), for CI')
    .action(async (pack: string, scriptFile: string, o: TestReportOptions) => {
      // The transcript is the output: runtime info logs (component prepared...) would interleave with it.
      Logger.overrideLogger(['error', 'fatal']);
      setExitCode(await runConversationTest(pack, scriptFile, io, o));
    });
}
