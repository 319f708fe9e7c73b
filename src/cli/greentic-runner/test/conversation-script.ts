import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument } from 'yaml';
import { GreenticError } from '../../../common/errors.js';
import type { SourceLoc } from '../../../flows/flow.types.js';
import { locate, posOf, type FlowSource } from '../../../flows/flow-source.js';
import { toMillis } from '../../../common/duration.js';

/**
 * A conversation script (`greentic-runner test <pack> <script.yaml>`): user turns, the replies
 * each should produce, and component calls answered by canned results or left real.
 *
 * ```yaml
 * flow: weather_bot
 * turn_timeout: 5s
 * mocks:
 *   weather_api:
 *     forecast_weather: { result: { location: { name: "{{input.q}}" }, summary: sunny } }
 * secrets: { api_key: test-key }      # the binding's secrets (real components read them)
 * http: { allow: ["127.0.0.1:8080"] }  # hosts real components may call
 * turns:
 *   - user: hi
 *     expect: ["Hi there!", { regex: "^What location" }]
 *     status: parked
 *   - user: Paris
 *     expect: [{ json: { text: "Weather for Paris: sunny" } }]
 * ```
 */

export type Expectation =
  | { kind: 'exact'; text: string; loc: SourceLoc }
  | { kind: 'contains'; text: string; loc: SourceLoc }
  | { kind: 'regex'; source: string; re: RegExp; loc: SourceLoc }
  | { kind: 'json'; subset: unknown; loc: SourceLoc };

export interface MockResponse {
  result?: unknown;
  /** Fail the call with this message (a ComponentError with `code`, default `component_failed`). */
  error?: string;
  code?: string;
  /** Answer after this long: exercises node timeouts. */
  delayMs?: number;
}

/** Per operation (`*`: any operation): one response, or a sequence (call n gets item n, the last repeats). */
export type ComponentMock = Map<string, MockResponse[]>;

export interface Turn {
  index: number;
  /** What the user says (may be empty when `action` carries a button press). */
  user: string;
  action?: Record<string, unknown>;
  expect?: Expectation[];
  status?: 'completed' | 'parked' | 'failed';
  /** Expected error code when the turn fails. */
  error?: string;
  timeoutMs: number;
  loc: SourceLoc;
}

export interface ConversationScript {
  file: string;
  name: string;
  flow?: string;
  tenant: string;
  user: string;
  session: Record<string, unknown>;
  mocks: Map<string, ComponentMock>;
  /** Components the script asks to run for real (`name: real`). */
  real: Set<string>;
  /** The binding's secrets, with their values: the only names a real component may read. */
  secrets: Map<string, string>;
  /** Hosts a real component may reach over HTTP (the tenant's `http.allow`); empty: none. */
  httpAllow: string[];
  turns: Turn[];
}

export class ScriptError extends GreenticError {
  constructor(
    message: string,
    readonly issues: SourceLoc[] = [],
  ) {
    super('test_script_invalid', message, 400, {});
  }
}

const DURATION = {
  oneOf: [
    { type: 'number', exclusiveMinimum: 0 },
    { type: 'string', pattern: '^(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h))+$' },
  ],
};
const RESPONSE = {
  type: 'object',
  additionalProperties: false,
  properties: { result: {}, error: { type: 'string' }, code: { type: 'string' }, delay: DURATION },
};
const EXPECTATION = {
  oneOf: [
    { type: 'string' },
    {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 2,
      properties: {
        text: { type: 'string' },
        contains: { type: 'string' },
        regex: { type: 'string' },
        flags: { type: 'string', pattern: '^[imsu]*$' },
        json: {},
      },
    },
  ],
};

export const SCRIPT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['turns'],
  properties: {
    name: { type: 'string' },
    flow: { type: 'string', minLength: 1 },
    tenant: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' },
    user: { type: 'string', minLength: 1 },
    turn_timeout: DURATION,
    session: { type: 'object' },
    secrets: { type: 'object', additionalProperties: { type: 'string' } },
    http: {
      type: 'object',
      additionalProperties: false,
      properties: { allow: { type: 'array', items: { type: 'string', minLength: 1 } } },
    },
    mocks: {
      type: 'object',
      additionalProperties: {
        oneOf: [
          { const: 'real' },
          {
            type: 'object',
            additionalProperties: { oneOf: [RESPONSE, { type: 'array', minItems: 1, items: RESPONSE }] },
          },
        ],
      },
    },
    turns: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          user: { type: 'string' },
          action: { type: 'object' },
          expect: { type: 'array', items: EXPECTATION },
          status: { enum: ['completed', 'parked', 'failed'] },
          error: { type: 'string' },
          timeout: DURATION,
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(SCRIPT_SCHEMA);

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const DEFAULT_TURN_TIMEOUT_MS = 10_000;

export async function loadScript(file: string): Promise<ConversationScript> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ScriptError(`${file}: cannot read the script: ${(e as Error).message}`);
  }
  return parseScript(text, file);
}

/** Parses and checks a script; every problem is reported with its file:line:col. */
export function parseScript(text: string, file: string): ConversationScript {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const source: FlowSource = { file, doc, lineCounter };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const at = posOf(source, e.pos[0]);
    throw new ScriptError(`${file}:${at.line}:${at.column}: YAML syntax error: ${e.message.split('\n')[0]}`, [
      at,
    ]);
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (!validate(raw)) {
    const lines = (validate.errors ?? []).map((e) => schemaProblem(e, source));
    const unique = [...new Set(lines.map((l) => l.text))];
    throw new ScriptError(
      `invalid conversation script:\n  ${unique.join('\n  ')}`,
      lines.map((l) => l.loc),
    );
  }
  const r = raw as unknown as Record<string, unknown>;
  const turnTimeout = toMillis(r['turn_timeout']) ?? DEFAULT_TURN_TIMEOUT_MS;
  const mocks = new Map<string, ComponentMock>();
  const real = new Set<string>();
  for (const [component, spec] of Object.entries(isRecord(r['mocks']) ? r['mocks'] : {})) {
    if (spec === 'real') {
      real.add(component);
      continue;
    }
    const ops: ComponentMock = new Map();
    for (const [op, resp] of Object.entries(spec as Record<string, unknown>)) {
      ops.set(op, (Array.isArray(resp) ? resp : [resp]).map(toResponse));
    }
    mocks.set(component, ops);
  }
  const turns: Turn[] = (r['turns'] as Record<string, unknown>[]).map((t, i) => {
    const loc = locate(source, ['turns', i], 'value');
    const turn: Turn = {
      index: i + 1,
      user: typeof t['user'] === 'string' ? t['user'] : '',
      timeoutMs: toMillis(t['timeout']) ?? turnTimeout,
      loc,
    };
    if (isRecord(t['action'])) turn.action = t['action'];
    if (typeof t['status'] === 'string') turn.status = t['status'] as Turn['status'];
    if (typeof t['error'] === 'string') turn.error = t['error'];
    if (Array.isArray(t['expect'])) {
      turn.expect = t['expect'].map((x: unknown, j) =>
        expectation(x, locate(source, ['turns', i, 'expect', j], 'value')),
      );
    }
    if (turn.user === '' && !turn.action) {
      throw new ScriptError(
        `${file}:${loc.line}:${loc.column}: turn ${i + 1} needs 'user' (what the user says) or 'action'`,
        [loc],
      );
    }
    return turn;
  });
  return {
    file,
    name: typeof r['name'] === 'string' ? r['name'] : file,
    ...(typeof r['flow'] === 'string' ? { flow: r['flow'] } : {}),
    tenant: typeof r['tenant'] === 'string' ? r['tenant'] : 'test',
    user: typeof r['user'] === 'string' ? r['user'] : 'tester',
    session: isRecord(r['session']) ? r['session'] : {},
    mocks,
    real,
    secrets: new Map(Object.entries(isRecord(r['secrets']) ? (r['secrets'] as Record<string, string>) : {})),
    httpAllow:
      isRecord(r['http']) && Array.isArray(r['http']['allow']) ? (r['http']['allow'] as string[]) : [],
    turns,
  };
}

function toResponse(v: unknown): MockResponse {
  const o = v as Record<string, unknown>;
  const out: MockResponse = {};
  if ('result' in o) out.result = o['result'];
  if (typeof o['error'] === 'string') out.error = o['error'];
  if (typeof o['code'] === 'string') out.code = o['code'];
  const delay = toMillis(o['delay']);
  if (delay !== undefined) out.delayMs = delay;
  return out;
}

function expectation(x: unknown, loc: SourceLoc): Expectation {
  if (typeof x === 'string') return { kind: 'exact', text: x, loc };
  const o = x as Record<string, unknown>;
  if (typeof o['regex'] === 'string') {
    const flags = typeof o['flags'] === 'string' ? o['flags'] : '';
    try {
      return { kind: 'regex', source: o['regex'], re: new RegExp(o['regex'], flags), loc };
    } catch (e) {
      throw new ScriptError(`${loc.file}:${loc.line}:${loc.column}: invalid regex: ${(e as Error).message}`, [
        loc,
      ]);
    }
  }
  if (typeof o['text'] === 'string') return { kind: 'exact', text: o['text'], loc };
  if (typeof o['contains'] === 'string') return { kind: 'contains', text: o['contains'], loc };
  if ('json' in o) return { kind: 'json', subset: o['json'], loc };
  throw new ScriptError(
    `${loc.file}:${loc.line}:${loc.column}: an expectation is a string (exact text) or one of {text}, {contains}, {regex, flags}, {json}`,
    [loc],
  );
}

function schemaProblem(e: ErrorObject, source: FlowSource): { text: string; loc: SourceLoc } {
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const p = e.params as Record<string, unknown>;
  let loc: SourceLoc;
  let message: string;
  const where = path.length ? `'${path.join('.')}'` : 'the script';
  if (e.keyword === 'additionalProperties') {
    loc = locate(source, [...path, String(p['additionalProperty'])], 'key');
    message = `${where}: unknown key '${String(p['additionalProperty'])}'`;
  } else if (e.keyword === 'required') {
    loc = locate(source, path, 'key');
    message = `${where} is missing '${String(p['missingProperty'])}'`;
  } else {
    loc = locate(source, path, 'value');
    message = `${where} ${e.message ?? 'is invalid'}`;
  }
  return { text: `${loc.file}:${loc.line}:${loc.column}: ${message}`, loc };
}
