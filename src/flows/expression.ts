/**
 * Conditions (`routing[].condition`, node `when`) are small expressions over the flow state.
 * They come from pack authors, so they are parsed by this tiny parser and never handed to
 * `eval`/`new Function`; property access reads own properties only (no `__proto__`, no methods).
 *
 * Supported syntax:
 *   literals     42  -1.5  "text"  'text'  true  false  null
 *   paths        in.age   forecast.payload.items[0].name   message.text   in["q-id"]
 *                (`.length` of a list or string is its length; a missing path is `null`)
 *   comparison   ==  !=  <  <=  >  >=        (`===`/`!==` are accepted as `==`/`!=`)
 *   logic        &&  ||  !   (also `and`, `or`, `not`), parentheses
 * `==` compares JSON values structurally, with null equal to a missing value; `<`... compare two
 * numbers or two strings and are false for anything else. A condition holds when its value is
 * truthy (not false, null, 0, "" or NaN).
 */

export class ExpressionError extends Error {
  constructor(
    message: string,
    /** 0-based offset in the expression text. */
    readonly offset: number,
  ) {
    super(message);
    this.name = 'ExpressionError';
  }
}

export type Evaluator = (scope: Readonly<Record<string, unknown>>) => unknown;

const MAX_LENGTH = 4_000;
const MAX_DEPTH = 64;

type Tok =
  | { t: 'num'; v: number; at: number }
  | { t: 'str'; v: string; at: number }
  | { t: 'id'; v: string; at: number }
  | { t: 'op'; v: string; at: number }
  | { t: 'end'; at: number };

const OPERATORS = ['===', '!==', '==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '(', ')', '[', ']', '.'];

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(src[i + 1] ?? '') && canStartOperand(out))) {
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(src.slice(i))!;
      out.push({ t: 'num', v: Number(m[0]), at: i });
      i += m[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[j + 1]!;
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
        } else {
          s += src[j];
          j++;
        }
      }
      if (j >= src.length) throw new ExpressionError('unterminated string', i);
      out.push({ t: 'str', v: s, at: i });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][\w$-]*/.exec(src.slice(i))!;
      // A trailing `-` belongs to no identifier (`a-` is a typo, not a name).
      const name = m[0].replace(/-+$/, '');
      out.push({ t: 'id', v: name, at: i });
      i += name.length;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExpressionError(`unexpected character '${c}'`, i);
    out.push({ t: 'op', v: op === '===' ? '==' : op === '!==' ? '!=' : op, at: i });
    i += op.length;
  }
  out.push({ t: 'end', at: src.length });
  return out;
}

function canStartOperand(prev: Tok[]): boolean {
  const last = prev[prev.length - 1];
  return !last || (last.t === 'op' && last.v !== ')' && last.v !== ']');
}

const KEYWORD_OPS: Record<string, string> = { and: '&&', or: '||', not: '!' };

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly toks: Tok[]) {}

  parse(): Evaluator {
    const e = this.or();
    const t = this.peek();
    if (t.t !== 'end') throw new ExpressionError(`unexpected ${describe(t)}`, t.at);
    return e;
  }

  private peek(): Tok {
    return this.toks[this.i]!;
  }

  private isOp(v: string): boolean {
    const t = this.peek();
    return (t.t === 'op' && t.v === v) || (t.t === 'id' && KEYWORD_OPS[t.v] === v);
  }

  private or(): Evaluator {
    let left = this.and();
    while (this.isOp('||')) {
      this.i++;
      const l = left;
      const r = this.and();
      left = (s) => {
        const a = l(s);
        return truthy(a) ? a : r(s);
      };
    }
    return left;
  }

  private and(): Evaluator {
    let left = this.not();
    while (this.isOp('&&')) {
      this.i++;
      const l = left;
      const r = this.not();
      left = (s) => {
        const a = l(s);
        return truthy(a) ? r(s) : a;
      };
    }
    return left;
  }

  private not(): Evaluator {
    if (this.isOp('!')) {
      this.i++;
      const inner = this.nested(() => this.not());
      return (s) => !truthy(inner(s));
    }
    return this.comparison();
  }

  private comparison(): Evaluator {
    const left = this.primary();
    const t = this.peek();
    if (t.t !== 'op' || !['==', '!=', '<', '<=', '>', '>='].includes(t.v)) return left;
    this.i++;
    const right = this.primary();
    switch (t.v) {
      case '==':
        return (s) => jsonEqual(left(s), right(s));
      case '!=':
        return (s) => !jsonEqual(left(s), right(s));
      default: {
        const op = t.v;
        return (s) => compare(op, left(s), right(s));
      }
    }
  }

  private primary(): Evaluator {
    const t = this.peek();
    if (t.t === 'num' || t.t === 'str') {
      this.i++;
      const v = t.v;
      return () => v;
    }
    if (t.t === 'op' && t.v === '(') {
      this.i++;
      const inner = this.nested(() => this.or());
      this.expect(')');
      return inner;
    }
    if (t.t === 'id') {
      this.i++;
      if (t.v === 'true') return () => true;
      if (t.v === 'false') return () => false;
      if (t.v === 'null') return () => null;
      return this.path(t.v);
    }
    throw new ExpressionError(
      t.t === 'end' ? 'unexpected end of expression' : `unexpected ${describe(t)}`,
      t.at,
    );
  }

  private path(root: string): Evaluator {
    const segs: string[] = [root];
    for (;;) {
      const t = this.peek();
      if (t.t === 'op' && t.v === '.') {
        this.i++;
        const n = this.peek();
        if (n.t === 'id' || (n.t === 'num' && Number.isInteger(n.v) && n.v >= 0)) {
          segs.push(String(n.v));
          this.i++;
        } else {
          throw new ExpressionError('expected a name after "."', n.at);
        }
      } else if (t.t === 'op' && t.v === '[') {
        this.i++;
        const n = this.peek();
        if (n.t !== 'str' && !(n.t === 'num' && Number.isInteger(n.v) && n.v >= 0)) {
          throw new ExpressionError('expected an index or a quoted key inside [ ]', n.at);
        }
        segs.push(String(n.v));
        this.i++;
        this.expect(']');
      } else {
        break;
      }
    }
    return (s) => getPath(s, segs) ?? null;
  }

  private expect(v: string): void {
    const t = this.peek();
    if (t.t !== 'op' || t.v !== v)
      throw new ExpressionError(`expected '${v}' but found ${describe(t)}`, t.at);
    this.i++;
  }

  private nested<T>(fn: () => T): T {
    if (++this.depth > MAX_DEPTH) throw new ExpressionError('expression nests too deeply', this.peek().at);
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }
}

function describe(t: Tok): string {
  switch (t.t) {
    case 'end':
      return 'end of expression';
    case 'str':
      return `string "${t.v}"`;
    default:
      return `'${t.v}'`;
  }
}

/** Parses once; the returned function is pure and safe to call per message. */
export function compileExpression(src: string): Evaluator {
  if (src.length > MAX_LENGTH)
    throw new ExpressionError(`expression longer than ${MAX_LENGTH} characters`, 0);
  if (src.trim() === '') throw new ExpressionError('empty expression', 0);
  return new Parser(tokenize(src)).parse();
}

export function truthy(v: unknown): boolean {
  return !(v === false || v === null || v === undefined || v === 0 || v === '' || Number.isNaN(v));
}

/** Own-property lookup along `segs`; `undefined` when any step is missing. */
export function getPath(root: unknown, segs: readonly string[]): unknown {
  let cur: unknown = root;
  for (const seg of segs) {
    if (cur === null || cur === undefined) return undefined;
    if (seg === 'length' && (typeof cur === 'string' || Array.isArray(cur))) {
      cur = cur.length;
    } else if (Array.isArray(cur)) {
      cur = /^\d+$/.test(seg) ? cur[Number(seg)] : undefined;
    } else if (typeof cur === 'object' && Object.hasOwn(cur, seg)) {
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      return undefined;
    }
  }
  return cur;
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || a === undefined || b === null || b === undefined) {
    return (a === null || a === undefined) && (b === null || b === undefined);
  }
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  const ak = Object.keys(a);
  const bo = b as Record<string, unknown>;
  return (
    ak.length === Object.keys(bo).length &&
    ak.every((k) => Object.hasOwn(bo, k) && jsonEqual((a as Record<string, unknown>)[k], bo[k]))
  );
}

function compare(op: string, a: unknown, b: unknown): boolean {
  if (!(
    (typeof a === 'number' && typeof b === 'number') ||
    (typeof a === 'string' && typeof b === 'string')
  )) {
    return false;
  }
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    default:
      return a >= b;
  }
}
