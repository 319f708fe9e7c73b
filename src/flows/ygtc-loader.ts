import { readFile } from 'node:fs/promises';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { isMap, LineCounter, parseDocument } from 'yaml';
import { toMillis } from '../common/duration.js';
import type { FlowDefinition, FlowIssue, FlowNode, RetryPolicy, RouteRule, SourceLoc } from './flow.types.js';
import { attachSource, locate, posOf, type FlowSource, type PathSegment } from './flow-source.js';
import { NODE_NAME_PATTERN, NODE_RESERVED_KEYS, YGTC_CHECK_SCHEMA } from './ygtc.schema.js';
import { OP_COMPONENT_EXEC, OP_MCP } from './operations.js';

export interface ParseResult {
  /** Present when the file has no error-level issue. */
  flow?: FlowDefinition;
  issues: FlowIssue[];
}

/** Best-effort IR even when there are errors, so validation can still report everything else. */
export interface ParseOutcome extends ParseResult {
  partial?: FlowDefinition;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 3, backoffMs: 100 };

const RESERVED = new Set(NODE_RESERVED_KEYS);
const ROUTE_KEYS = new Set(['to', 'out', 'reply', 'status', 'condition']);
const MAX_ALIASES = 100;

let validator: ValidateFunction | undefined;

function schemaValidator(): ValidateFunction {
  if (!validator) {
    const ajv = new Ajv2020({ allErrors: true, verbose: true, allowUnionTypes: true, strict: true });
    ajv.addKeyword({ keyword: 'x-message', schemaType: 'string' });
    validator = ajv.compile(YGTC_CHECK_SCHEMA);
  }
  return validator;
}

/** Parses one `.ygtc` document into a FlowDefinition; every issue carries its line and column. */
export function parseFlow(text: string, file: string): ParseResult {
  const { flow, issues } = parseFlowSource(text, file);
  return flow ? { flow, issues } : { issues };
}

export async function loadFlowFile(path: string): Promise<ParseResult> {
  return parseFlow(await readFile(path, 'utf8'), path);
}

/** `parseFlow` plus the partial IR; the validator uses it to report everything in one pass. */
export function parseFlowSource(text: string, file: string): ParseOutcome {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const source: FlowSource = { file, doc, lineCounter };
  const issues: FlowIssue[] = [];
  const at = (loc: SourceLoc, severity: FlowIssue['severity'], code: string, message: string): void => {
    issues.push({ severity, code, message, ...loc });
  };

  for (const e of doc.errors) {
    const open = e.code === 'MISSING_CHAR' ? openingQuote(text, e.pos[0], e.message) : undefined;
    const message =
      yamlMessage(e.message) + (open !== undefined ? ' (the string that starts here is never closed)' : '');
    at(posOf(source, open ?? e.pos[0]), 'error', 'yaml_syntax', `YAML syntax error: ${message}`);
  }
  for (const w of doc.warnings) {
    at(posOf(source, w.pos[0]), 'warning', 'yaml_warning', `YAML: ${yamlMessage(w.message)}`);
  }
  if (doc.errors.length > 0) return { issues };

  if (doc.contents === null) {
    at({ file, line: 1, column: 1 }, 'error', 'empty_flow', 'the flow file is empty');
    return { issues };
  }
  if (!isMap(doc.contents)) {
    at(locate(source, []), 'error', 'invalid_type', 'a flow must be a YAML mapping (id, type, nodes, ...)');
    return { issues };
  }
  let raw: Record<string, unknown>;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIASES }) as Record<string, unknown>;
  } catch (e) {
    at(locate(source, []), 'error', 'yaml_syntax', `YAML error: ${(e as Error).message}`);
    return { issues };
  }

  const validate = schemaValidator();
  if (!validate(raw)) issues.push(...schemaIssues(validate.errors ?? [], source));

  const partial = buildFlow(raw, source, issues);
  const hasErrors = issues.some((i) => i.severity === 'error');
  return hasErrors ? { issues, partial } : { flow: partial, issues, partial };
}

/**
 * yaml reports an unclosed quoted string at the end of the document; the useful position is the
 * opening quote: the nearest unescaped quote before the end (an unclosed string holds none).
 */
function openingQuote(text: string, end: number, message: string): number | undefined {
  const q = message.includes('"') ? '"' : message.includes("'") ? "'" : undefined;
  if (!q) return undefined;
  for (let i = Math.min(end, text.length) - 1; i >= 0; i--) {
    if (text[i] !== q) continue;
    if (q === '"') {
      let slashes = 0;
      for (let j = i - 1; j >= 0 && text[j] === '\\'; j--) slashes++;
      if (slashes % 2 === 0) return i;
    } else if (text[i - 1] === "'") {
      i--;
    } else {
      return i;
    }
  }
  return undefined;
}

function yamlMessage(m: string): string {
  return m.replace(/ at line \d+, column \d+:?[\s\S]*$/, '').trim();
}

// ---------------------------------------------------------------------------------------------
// Building the IR

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function buildFlow(raw: Record<string, unknown>, source: FlowSource, issues: FlowIssue[]): FlowDefinition {
  const file = source.file;
  const nodes = new Map<string, FlowNode>();
  const rawNodes = isRecord(raw['nodes']) ? raw['nodes'] : {};
  const nodeName = new RegExp(NODE_NAME_PATTERN);

  // Upstream: schema_version below 2 is the legacy form, whose nodes may carry several keys (the last wins).
  const sv = raw['schema_version'];
  const legacy = typeof sv === 'number' && sv < 2;
  for (const [id, rawNode] of Object.entries(rawNodes)) {
    if (!nodeName.test(id)) continue;
    const loc = locate(source, ['nodes', id]);
    const cfg = isRecord(rawNode) ? rawNode : {};
    let opKeys = Object.keys(cfg).filter((k) => !RESERVED.has(k));
    // Upstream lets `component.exec` sit with one other key; the call is the component.exec one.
    if (opKeys.length === 2 && opKeys.includes(OP_COMPONENT_EXEC)) {
      const other = opKeys.find((k) => k !== OP_COMPONENT_EXEC)!;
      issues.push({
        severity: 'warning',
        code: 'extra_operation_key',
        message: `node '${id}': '${other}' beside component.exec is ignored; the node calls the component.exec component`,
        ...locate(source, ['nodes', id, other]),
      });
      opKeys = [OP_COMPONENT_EXEC];
    } else if (legacy && opKeys.length > 1) {
      opKeys = [opKeys[opKeys.length - 1]!];
    }
    if (isRecord(rawNode)) {
      if (opKeys.length === 0) {
        issues.push({
          severity: 'error',
          code: 'node_operation_count',
          message: `node '${id}' has no operation key: it needs exactly one (e.g. qa.process, templating.handlebars, component.exec, or a component's namespace.op)`,
          ...loc,
        });
      } else if (opKeys.length > 1) {
        issues.push({
          severity: 'error',
          code: 'node_operation_count',
          message: `node '${id}' has ${opKeys.length} operation keys (${opKeys.join(', ')}): a node has exactly one`,
          ...locate(source, ['nodes', id, opKeys[1]!]),
        });
      }
    }
    const operation = opKeys.length === 1 ? opKeys[0]! : '';
    const node: FlowNode = {
      id,
      operation,
      config: operation ? cfg[operation] : undefined,
      routing: buildRouting(id, cfg['routing'], source, issues),
      loc,
    };
    const hint = (key: string, sub: string | undefined, message: string): void => {
      issues.push({
        severity: 'warning',
        code: 'ignored_hint',
        message: `node '${id}': ${message}`,
        ...locate(source, sub === undefined ? ['nodes', id, key] : ['nodes', id, key, sub], 'key'),
      });
    };
    const retry = readRetry(cfg['retry'], hint);
    if (retry) node.retry = retry;
    const timeoutMs = readTimeout(cfg['timeout'], hint);
    if (timeoutMs !== undefined) node.timeoutMs = timeoutMs;
    const when = readWhen(cfg['when'], hint);
    if (when !== undefined) node.when = when;
    if (cfg['output'] !== undefined) node.output = cfg['output'];
    if (isRecord(cfg['meta'])) node.meta = cfg['meta'];
    if (cfg['in_map'] !== undefined) node.inMap = cfg['in_map'];
    if (cfg['out_map'] !== undefined) node.outMap = cfg['out_map'];
    if (cfg['err_map'] !== undefined) node.errMap = cfg['err_map'];
    if (typeof cfg['operation'] === 'string' && cfg['operation'] !== '')
      node.operationName = cfg['operation'];
    if (operation === OP_MCP) checkMcp(id, cfg[OP_MCP], source, issues);
    nodes.set(id, node);
  }

  const first = nodes.keys().next();
  const start = typeof raw['start'] === 'string' ? raw['start'] : first.done ? '' : first.value;
  const flow: FlowDefinition = {
    id: typeof raw['id'] === 'string' ? raw['id'] : '',
    type: typeof raw['type'] === 'string' ? raw['type'] : '',
    start,
    parameters: isRecord(raw['parameters']) ? raw['parameters'] : {},
    nodes,
    file,
    raw,
  };
  if (typeof raw['title'] === 'string') flow.title = raw['title'];
  if (typeof raw['description'] === 'string') flow.description = raw['description'];
  if (Array.isArray(raw['tags'])) flow.tags = raw['tags'].filter((t): t is string => typeof t === 'string');
  if (typeof sv === 'number') flow.schemaVersion = sv;
  attachSource(flow, source);
  return flow;
}

type Hint = (key: string, sub: string | undefined, message: string) => void;

const RETRY_KEYS = new Set(['max_attempts', 'backoff_ms']);

/** `retry: { max_attempts, backoff_ms }`; other keys (upstream allows any) are reported and ignored. */
function readRetry(v: unknown, hint: Hint): RetryPolicy | undefined {
  if (!isRecord(v)) return undefined;
  for (const k of Object.keys(v)) {
    if (!RETRY_KEYS.has(k))
      hint('retry', k, `retry.${k} is not read by this runner (it reads max_attempts, backoff_ms)`);
  }
  let maxAttempts = DEFAULT_RETRY.maxAttempts;
  let backoffMs = DEFAULT_RETRY.backoffMs;
  const m = v['max_attempts'];
  if (m !== undefined) {
    if (typeof m === 'number' && Number.isInteger(m) && m >= 1 && m <= 100) maxAttempts = m;
    else
      hint(
        'retry',
        'max_attempts',
        `retry.max_attempts must be an integer from 1 to 100; ${maxAttempts} is used`,
      );
  }
  const b = v['backoff_ms'];
  if (b !== undefined) {
    if (typeof b === 'number' && Number.isInteger(b) && b >= 0 && b <= 600_000) backoffMs = b;
    else
      hint(
        'retry',
        'backoff_ms',
        `retry.backoff_ms must be an integer from 0 to 600000; ${backoffMs} is used`,
      );
  }
  return { maxAttempts, backoffMs };
}

/** `timeout: { ms: 2000 }` or `timeout: { duration: '2s' }`. */
function readTimeout(v: unknown, hint: Hint): number | undefined {
  if (!isRecord(v)) return undefined;
  for (const k of Object.keys(v)) {
    if (k !== 'ms' && k !== 'duration')
      hint('timeout', k, `timeout.${k} is not read by this runner (it reads ms or duration)`);
  }
  if (v['ms'] !== undefined && v['duration'] !== undefined) {
    hint('timeout', 'duration', 'timeout has both ms and duration; ms is used');
  }
  const key = v['ms'] !== undefined ? 'ms' : v['duration'] !== undefined ? 'duration' : undefined;
  if (key === undefined) {
    if (Object.keys(v).length === 0) hint('timeout', undefined, 'timeout is empty: give ms or duration');
    return undefined;
  }
  const ms =
    key === 'ms' ? (typeof v['ms'] === 'number' ? toMillis(v['ms']) : undefined) : toMillis(v['duration']);
  if (ms === undefined) {
    hint(
      'timeout',
      key,
      key === 'ms'
        ? 'timeout.ms must be a positive number of milliseconds; the node has no timeout'
        : "timeout.duration must be a duration such as '250ms', '5s' or '1m30s'; the node has no timeout",
    );
  }
  return ms;
}

/** `when: { condition: <expression> }`. */
function readWhen(v: unknown, hint: Hint): string | undefined {
  if (!isRecord(v)) return undefined;
  for (const k of Object.keys(v)) {
    if (k !== 'condition') hint('when', k, `when.${k} is not read by this runner (it reads condition)`);
  }
  const c = v['condition'];
  if (typeof c === 'string' && c.trim() !== '') return c;
  if (typeof c === 'boolean') return String(c);
  hint(
    'when',
    c === undefined ? undefined : 'condition',
    'when needs condition: <expression>; the node always runs',
  );
  return undefined;
}

/** Upstream's `mcp` payload: `server` and `tool` non-empty strings, `arguments` a mapping, `output` a string. */
function checkMcp(id: string, payload: unknown, source: FlowSource, issues: FlowIssue[]): void {
  const at = (path: PathSegment[], message: string): void => {
    issues.push({
      severity: 'error',
      code: 'invalid_mcp',
      message: `node '${id}': mcp ${message}`,
      ...locate(source, ['nodes', id, OP_MCP, ...path], 'value'),
    });
  };
  if (!isRecord(payload)) {
    at([], 'needs a mapping { server, tool, arguments?, output? }');
    return;
  }
  for (const key of ['server', 'tool']) {
    const v = payload[key];
    if (typeof v !== 'string' || v.trim() === '') {
      at(v === undefined ? [] : [key], `needs '${key}': a non-empty string`);
    }
  }
  if (payload['arguments'] !== undefined && !isRecord(payload['arguments'])) {
    at(['arguments'], "'arguments' must be a mapping");
  }
  if (payload['output'] !== undefined && typeof payload['output'] !== 'string') {
    at(['output'], "'output' must be a string (the state key the result lands under)");
  }
}

function buildRouting(id: string, routing: unknown, source: FlowSource, issues: FlowIssue[]): RouteRule[] {
  const path: PathSegment[] = ['nodes', id, 'routing'];
  if (routing === 'out' || routing === 'reply') {
    return [{ [routing]: true, loc: locate(source, path, 'value') }];
  }
  if (!Array.isArray(routing)) return [];
  const rules: RouteRule[] = [];
  routing.forEach((r: unknown, i) => {
    if (!isRecord(r)) return;
    const loc = locate(source, [...path, i], 'value');
    const rule: RouteRule = { loc };
    if (typeof r['to'] === 'string') rule.to = r['to'];
    if (typeof r['out'] === 'boolean') rule.out = r['out'];
    if (typeof r['reply'] === 'boolean') rule.reply = r['reply'];
    if (typeof r['status'] === 'string') rule.status = r['status'];
    if (typeof r['condition'] === 'string') rule.condition = r['condition'];
    const ends = rule.out === true || rule.reply === true;
    // A rule with unknown keys is already reported by the schema; one message per mistake.
    if (Object.keys(r).some((k) => !ROUTE_KEYS.has(k))) {
      rules.push(rule);
      return;
    }
    if (rule.to !== undefined && ends) {
      issues.push({
        severity: 'error',
        code: 'invalid_route',
        message: `node '${id}': routing rule ${i + 1} has both 'to' and '${rule.out ? 'out' : 'reply'}: true'; a rule either goes to a node or ends the flow`,
        ...loc,
      });
    } else if (rule.to === undefined && !ends && Object.keys(r).length > 0) {
      issues.push({
        severity: 'error',
        code: 'invalid_route',
        message: `node '${id}': routing rule ${i + 1} has no target: give it 'to: <node>', 'out: true' or 'reply: true'`,
        ...loc,
      });
    }
    rules.push(rule);
  });
  return rules;
}

// ---------------------------------------------------------------------------------------------
// Schema errors → issues at the offending key or value

function decodePath(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** `nodes.a.retry.max_attempts` → `node 'a': retry.max_attempts`; `id` → `'id'`. */
function describePath(path: readonly string[]): string {
  if (path.length === 0) return 'the flow';
  const dotted = (segs: readonly string[]): string =>
    segs.reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
  if (path[0] === 'nodes' && path.length >= 2) {
    const rest = dotted(path.slice(2));
    return rest ? `node '${path[1]}': ${rest}` : `node '${path[1]}'`;
  }
  return `'${dotted(path)}'`;
}

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  null: 'null',
};

function typeWords(t: unknown): string {
  const types = Array.isArray(t) ? t : [t];
  return types.map((x) => TYPE_WORDS[String(x)] ?? String(x)).join(' or ');
}

function schemaIssues(errors: readonly ErrorObject[], source: FlowSource): FlowIssue[] {
  // A failed oneOf reports every branch; keep the deeper errors of the branch the value was
  // meant for, or the oneOf's own `x-message` when the value fits no branch at all.
  const collapsed = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'oneOf' && typeof e.parentSchema?.['x-message'] === 'string')
      collapsed.add(e.instancePath);
  }
  const deeper = (p: string): boolean =>
    errors.some((e) => e.instancePath.startsWith(p + '/') && e.keyword !== 'oneOf');

  const out: FlowIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'if') continue;
    const owner = [...collapsed].find((p) => e.instancePath === p);
    if (owner !== undefined) {
      if (e.keyword !== 'oneOf' || deeper(owner)) continue;
    }
    const issue = schemaIssue(e, source);
    const key = `${issue.line}:${issue.column}:${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(issue);
    }
  }
  return out;
}

function schemaIssue(e: ErrorObject, source: FlowSource): FlowIssue {
  const path = decodePath(e.instancePath);
  const where = describePath(path);
  const p = e.params as Record<string, unknown>;
  let code = 'invalid_value';
  let message: string;
  let loc: SourceLoc;
  switch (e.keyword) {
    case 'required':
      code = 'missing_key';
      message =
        path.length === 0
          ? `missing required key '${String(p['missingProperty'])}'`
          : `${where} is missing required key '${String(p['missingProperty'])}'`;
      loc = locate(source, path, 'key');
      break;
    case 'additionalProperties': {
      const prop = String(p['additionalProperty']);
      loc = locate(source, [...path, prop], 'key');
      if (path.length === 1 && path[0] === 'nodes') {
        code = 'invalid_node_name';
        message = `invalid node name '${prop}': node names must match ${NODE_NAME_PATTERN}`;
      } else if (path.length === 2 && path[0] === 'nodes') {
        code = 'invalid_operation_key';
        message = `${where}: '${prop}' is not a valid operation key (expected e.g. qa.process or namespace.op)`;
      } else {
        code = 'unknown_key';
        const allowed = Object.keys(
          (e.parentSchema?.['properties'] as Record<string, unknown> | undefined) ?? {},
        );
        message = `${where}: unknown key '${prop}'${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`;
      }
      break;
    }
    case 'type':
      code = 'invalid_type';
      message =
        typeof e.parentSchema?.['x-message'] === 'string' && e.parentSchema['type'] !== undefined
          ? `${where} ${e.parentSchema['x-message']}`
          : `${where} must be ${typeWords(p['type'])}`;
      loc = locate(source, path, 'value');
      break;
    case 'oneOf':
      message = `${where} ${String(e.parentSchema?.['x-message'] ?? 'does not match any allowed form')}`;
      loc = locate(source, path, 'value');
      break;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      message = `${where} must be ${String(p['comparison'])} ${String(p['limit'])}`;
      loc = locate(source, path, 'value');
      break;
    case 'minLength':
      message = `${where} must not be empty`;
      loc = locate(source, path, 'value');
      break;
    case 'minProperties':
      message =
        path.join('.') === 'nodes' ? `'nodes' must declare at least one node` : `${where} must not be empty`;
      loc = locate(source, path, 'value');
      break;
    case 'enum':
      message = `${where} must be one of: ${(p['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
      loc = locate(source, path, 'value');
      break;
    case 'pattern':
      message = `${where} must match ${String(p['pattern'])}`;
      loc = locate(source, path, 'value');
      break;
    default:
      message = `${where} ${e.message ?? 'is invalid'}`;
      loc = locate(source, path, 'value');
  }
  return { severity: 'error', code, message, ...loc };
}
