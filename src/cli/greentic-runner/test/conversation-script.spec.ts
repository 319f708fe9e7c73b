import { describe, expect, it } from 'vitest';
import { parseScript, ScriptError } from './conversation-script.js';
import { checkReplies, subsetMismatch } from './expectations.js';

const y = (...lines: string[]): string => lines.join('\n') + '\n';

describe('conversation scripts', () => {
  it('reads turns, expectations, mocks and limits', () => {
    const s = parseScript(
      y(
        'flow: f',
        'turn_timeout: 2s',
        'mocks:',
        '  a: real',
        '  b:',
        '    op: { result: 1 }',
        "    '*': [{ error: boom, code: x }, { delay: 10ms, result: 2 }]",
        'turns:',
        '  - user: hi',
        '    expect: [hello, { regex: "^w", flags: i }, { contains: x }, { json: { text: y } }]',
        '    timeout: 500ms',
        '  - action: { value: Red }',
        '    status: failed',
        '    error: component_timeout',
      ),
      's.yaml',
    );
    expect(s.flow).toBe('f');
    expect([...s.real]).toEqual(['a']);
    expect(s.mocks.get('b')!.get('op')).toEqual([{ result: 1 }]);
    expect(s.mocks.get('b')!.get('*')).toEqual([
      { error: 'boom', code: 'x' },
      { result: 2, delayMs: 10 },
    ]);
    expect(s.turns[0]!.timeoutMs).toBe(500);
    expect(s.turns[1]!.timeoutMs).toBe(2_000);
    expect(s.turns[0]!.expect!.map((e) => e.kind)).toEqual(['exact', 'regex', 'contains', 'json']);
    expect(s.turns[0]!.expect![1]!.loc).toMatchObject({ file: 's.yaml', line: 10, column: 21 });
    expect(s.turns[1]).toMatchObject({
      user: '',
      action: { value: 'Red' },
      status: 'failed',
      error: 'component_timeout',
    });
  });

  it('refuses a bad script with file:line:col', () => {
    const bad = (text: string) => {
      try {
        parseScript(text, 'bad.yaml');
      } catch (e) {
        expect(e).toBeInstanceOf(ScriptError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(bad(y('turns:', '  - user: hi', '    status: done'))).toContain(
      "bad.yaml:3:13: 'turns.0.status' must be equal to one of the allowed values",
    );
    expect(bad(y('turns:', '  - expect: [x]'))).toContain("bad.yaml:2:5: turn 1 needs 'user'");
    expect(bad(y('turns:', '  - user: hi', '    expect: [{ regex: "(" }]'))).toContain(
      'bad.yaml:3:14: invalid regex',
    );
    expect(bad('turns: [\n')).toMatch(/^bad\.yaml:\d+:\d+: YAML syntax error/);
  });
});

describe('reply expectations', () => {
  it('finds where a JSON subset differs', () => {
    expect(subsetMismatch({ a: { b: [1, 2] } }, { a: { b: [1, 2], c: 3 }, d: 4 })).toBeUndefined();
    expect(subsetMismatch({ a: { b: [1, 3] } }, { a: { b: [1, 2] } })).toEqual({
      path: '.a.b[1]',
      expected: 3,
      actual: 2,
    });
    expect(subsetMismatch({ card: { ok: true } }, { text: 'x' })).toEqual({
      path: '.card',
      expected: { ok: true },
      actual: undefined,
    });
  });

  it('reports the first differing reply with a caret under the first differing character', () => {
    const loc = { file: 'f', line: 1, column: 1 };
    const m = checkReplies([{ kind: 'exact', text: 'Hello Ada', loc }], [{ text: 'Hello Bob' }]);
    expect(m).toEqual({
      headline: 'reply 1 does not match (expected at f:1:1)',
      diff: [
        '- expected: "Hello Ada"',
        '+ actual:   "Hello Bob"',
        '                   ^ first difference at character 7',
      ],
    });
  });
});
