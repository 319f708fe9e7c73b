/**
 * `greentic-runner test --junit <file>`: the run as JUnit XML in the Jenkins/Surefire shape CI
 * servers read (testsuites > testsuite > testcase > failure | error | skipped), one testcase per turn.
 */

/** One turn of a conversation test, as the JSON report and the JUnit file give it. */
export interface TurnOutcome {
  index: number;
  /** What the user said or pressed, as the transcript shows it. */
  said: string;
  /** passed; failed: did not go as scripted; skipped: not reached after an earlier failure. */
  outcome: 'passed' | 'failed' | 'skipped';
  status?: string;
  ms: number;
  /** The script's line:col of the turn. */
  at: string;
  failure?: { message: string; diff: string[] };
}

/** A `greentic-runner test` run: the `--json` output, and what the JUnit file is written from. */
export interface TestRunReport {
  ok: boolean;
  script: string;
  file: string;
  pack?: string;
  version?: string;
  flow?: string;
  turns: TurnOutcome[];
  /** The pack or script could not be used: no turn ran. */
  error?: string;
  ms: number;
}

const escapeXml = (s: string): string =>
  s
    // Characters XML 1.0 cannot carry at all (control characters other than tab, CR and LF).
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

export function junitXml(r: TestRunReport, timestamp = new Date()): string {
  const failures = r.turns.filter((t) => t.outcome === 'failed').length;
  const skipped = r.turns.filter((t) => t.outcome === 'skipped').length;
  const errors = r.error !== undefined ? 1 : 0;
  const tests = r.turns.length + errors;
  const classname = escapeXml(`${r.pack ?? 'pack'}.${r.flow ?? r.script}`);
  const cases = r.turns.map((t) => {
    const open = `    <testcase name="${escapeXml(`turn ${t.index}: ${t.said}`)}" classname="${classname}" time="${seconds(t.ms)}"`;
    if (t.outcome === 'passed') return `${open}/>`;
    if (t.outcome === 'skipped')
      return `${open}>\n      <skipped message="not reached: an earlier turn failed"/>\n    </testcase>`;
    const f = t.failure ?? { message: 'did not go as scripted', diff: [] };
    return `${open}>\n      <failure message="${escapeXml(f.message)}" type="mismatch">${escapeXml(
      [`${r.file}:${t.at}`, ...f.diff].join('\n'),
    )}</failure>\n    </testcase>`;
  });
  if (r.error !== undefined)
    cases.push(
      `    <testcase name="load pack and script" classname="${classname}" time="0.000">\n      <error message="${escapeXml(r.error)}" type="unusable"/>\n    </testcase>`,
    );
  // Only the attributes the Jenkins/Surefire XSDs declare on each element, so strict readers accept it.
  const counts = `tests="${tests}" failures="${failures}" errors="${errors}"`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="greentic-runner test" ${counts} time="${seconds(r.ms)}">`,
    `  <testsuite name="${escapeXml(r.script)}" ${counts} skipped="${skipped}" time="${seconds(r.ms)}" timestamp="${timestamp.toISOString().slice(0, 19)}" hostname="localhost">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
