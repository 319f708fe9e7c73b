import type { OutboundReply } from '../../../core/message-envelope.js';
import type { Expectation } from './conversation-script.js';

/** Why a turn did not go as scripted: a headline and diff lines (`-` expected, `+` actual). */
export interface Mismatch {
  headline: string;
  diff: string[];
}

export function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
}

/** A reply as one line: its text, or its card/choices when it has no text. */
export function replyLine(r: OutboundReply): string {
  const parts: string[] = [];
  if (r.text !== undefined) parts.push(show(r.text));
  if (r.card !== undefined) parts.push(`card ${show(r.card)}`);
  if (r.choices !== undefined) parts.push(`choices ${show(r.choices)}`);
  return parts.length > 0 ? parts.join(' ') : '(empty reply)';
}

function describe(e: Expectation): string {
  switch (e.kind) {
    case 'exact':
      return show(e.text);
    case 'contains':
      return `text containing ${show(e.text)}`;
    case 'regex':
      return `text matching /${e.source}/${e.re.flags}`;
    case 'json':
      return `reply including ${show(e.subset)}`;
  }
}

/** Where `subset` is not found in `actual` (JSON subset: objects may hold more keys), or undefined. */
export function subsetMismatch(
  subset: unknown,
  actual: unknown,
  path = '',
): { path: string; expected: unknown; actual: unknown } | undefined {
  if (subset !== null && typeof subset === 'object' && !Array.isArray(subset)) {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual))
      return { path: path || '.', expected: subset, actual };
    for (const [k, v] of Object.entries(subset)) {
      const a = Object.hasOwn(actual, k) ? (actual as Record<string, unknown>)[k] : undefined;
      const m = subsetMismatch(v, a, `${path}.${k}`);
      if (m) return m;
    }
    return undefined;
  }
  if (Array.isArray(subset)) {
    if (!Array.isArray(actual) || actual.length !== subset.length)
      return { path: path || '.', expected: subset, actual };
    for (let i = 0; i < subset.length; i++) {
      const m = subsetMismatch(subset[i], actual[i], `${path}[${i}]`);
      if (m) return m;
    }
    return undefined;
  }
  return Object.is(subset, actual) || (subset === null && actual === undefined)
    ? undefined
    : { path: path || '.', expected: subset, actual };
}

/** Column marker under the first differing character of two strings shown with show(). */
function caret(expected: string, actual: string, indent: number): string | undefined {
  let i = 0;
  while (i < expected.length && i < actual.length && expected[i] === actual[i]) i++;
  if (i === expected.length && i === actual.length) return undefined;
  // +1 for the opening quote of the JSON string.
  const col = show(actual.slice(0, i)).length - 1;
  return `${' '.repeat(indent + col)}^ first difference at character ${i + 1}`;
}

export function matchReply(e: Expectation, r: OutboundReply): string[] | undefined {
  const text = r.text ?? '';
  switch (e.kind) {
    case 'exact': {
      if (r.text === e.text) return undefined;
      const lines = [
        `- expected: ${show(e.text)}`,
        `+ actual:   ${r.text === undefined ? replyLine(r) : show(text)}`,
      ];
      const c = r.text === undefined ? undefined : caret(e.text, text, '+ actual:   '.length);
      return c ? [...lines, c] : lines;
    }
    case 'contains':
      return text.includes(e.text)
        ? undefined
        : [`- expected text containing: ${show(e.text)}`, `+ actual:   ${replyLine(r)}`];
    case 'regex':
      return e.re.test(text)
        ? undefined
        : [`- expected text matching: /${e.source}/${e.re.flags}`, `+ actual:   ${replyLine(r)}`];
    case 'json': {
      const m = subsetMismatch(e.subset, r);
      if (!m) return undefined;
      return [
        `- expected ${m.path}: ${show(m.expected)}`,
        `+ actual   ${m.path}: ${m.actual === undefined ? '(missing)' : show(m.actual)}`,
        `  (whole reply: ${replyLine(r)})`,
      ];
    }
  }
}

/** Checks the replies against the expectations, in order; the first mismatch only. */
export function checkReplies(
  expect: readonly Expectation[],
  replies: readonly OutboundReply[],
): Mismatch | undefined {
  for (let i = 0; i < Math.min(expect.length, replies.length); i++) {
    const e = expect[i]!;
    const diff = matchReply(e, replies[i]!);
    if (diff) {
      return {
        headline: `reply ${i + 1} does not match (expected at ${e.loc.file}:${e.loc.line}:${e.loc.column})`,
        diff,
      };
    }
  }
  if (expect.length !== replies.length) {
    const diff: string[] = [];
    for (let i = 0; i < Math.max(expect.length, replies.length); i++) {
      if (i < expect.length) diff.push(`- ${i + 1}: ${describe(expect[i]!)}`);
      if (i < replies.length) diff.push(`+ ${i + 1}: ${replyLine(replies[i]!)}`);
    }
    return {
      headline: `expected ${expect.length} repl${expect.length === 1 ? 'y' : 'ies'}, got ${replies.length}`,
      diff,
    };
  }
  return undefined;
}
