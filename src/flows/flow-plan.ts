import Handlebars from 'handlebars';
import { compileExpression, ExpressionError, getPath, type Evaluator } from './expression.js';
import type { FlowDefinition, FlowNode, NodeCall, RouteRule } from './flow.types.js';
import { compileMapping, type MappingFn } from './mapping-template.js';
import { isSupportedBuiltin, v1CallTarget } from './flow-v1-import.js';
import { isBuiltinComponentId } from './flow-v1.js';
import { readQaSpec, type QaSpec } from './nodes/qa-process.js';
import {
  componentArgsOf,
  isComponentNode,
  isExecNode,
  OP_EMIT,
  OP_FLOW_CALL,
  OP_MCP,
  OP_QA,
  OP_REPLY,
  OP_TEMPLATE,
  STATE_ROOTS,
} from './operations.js';

/**
 * Everything about a flow that does not change between messages: parsed conditions, compiled
 * templates, arg mappers. Built once per FlowDefinition and shared by all runs.
 */

export type State = Record<string, unknown>;
export type Render = (state: State) => string;
export type Mapper = (state: State) => unknown;

export interface RoutePlan {
  rule: RouteRule;
  cond?: Evaluator;
}

export type NodeExec =
  | { kind: 'qa'; spec: QaSpec; welcome?: Render; prompts: Render[] }
  | { kind: 'template'; text: Render; reply: boolean }
  | { kind: 'reply'; text?: Render; card?: Mapper; choices?: Mapper }
  | { kind: 'component'; args: Mapper; outMap?: Mapper; errMap?: Mapper }
  | { kind: 'flow_call'; flowId: string; input: Mapper; output?: Mapper }
  /** A flow-v1 component call: mappings are `{{...}}` templates over the v1 scope (`v1Scope`). */
  | {
      kind: 'call';
      component: string;
      operation?: string;
      input: MappingFn;
      output?: MappingFn;
      errMap?: MappingFn;
    }
  /** flow-v1 `emit.*`: its rendered mapping is sent as replies. */
  | { kind: 'emit'; payload: MappingFn }
  /** flow-v1 `session.wait`: parks until the next message. */
  | { kind: 'wait' }
  | { kind: 'invalid'; message: string };

export interface NodePlan {
  node: FlowNode;
  when?: Evaluator;
  routes: RoutePlan[];
  exec: NodeExec;
}

/** A config problem found while compiling; `path` is under `nodes.<nodeId>`. */
export interface PlanProblem {
  nodeId: string;
  path: (string | number)[];
  code: 'invalid_expression' | 'invalid_template' | 'invalid_config';
  message: string;
  /** Point at the key of `path` rather than its value (an unknown key). */
  atKey?: boolean;
}

export interface FlowPlan {
  nodes: Map<string, NodePlan>;
  problems: PlanProblem[];
}

/** Isolated so helpers registered elsewhere in the process never reach flow templates. */
const hb = Handlebars.create();

/**
 * `{{i18n:key}}` in a `.ygtc` template: the pack's string for the message's locale (the executor puts
 * them at `message.i18n`), else the key itself, as upstream renders a missing one.
 */
const I18N_TOKEN = /\{\{\s*i18n:([\w.-]+)\s*\}\}/g;
hb.registerHelper('greentic_i18n', function (key: unknown, options: { data?: { root?: unknown } }) {
  const root = options.data?.root as { message?: { i18n?: Record<string, unknown> } } | undefined;
  const text = typeof key === 'string' ? root?.message?.i18n?.[key] : undefined;
  return typeof text === 'string' ? text : String(key);
});

const PLANS = new WeakMap<FlowDefinition, FlowPlan>();

export function planFor(flow: FlowDefinition): FlowPlan {
  let plan = PLANS.get(flow);
  if (!plan) {
    plan = compileFlowPlan(flow);
    PLANS.set(flow, plan);
  }
  return plan;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

class CompileError extends Error {
  constructor(
    readonly code: PlanProblem['code'],
    readonly path: (string | number)[],
    message: string,
    readonly atKey = false,
  ) {
    super(message);
  }
}

export function compileTemplate(text: string): Render {
  let ast: ReturnType<typeof hb.parse>;
  try {
    ast = hb.parse(text.replace(I18N_TOKEN, (_m, key: string) => `{{greentic_i18n "${key}"}}`));
  } catch (e) {
    throw new Error(condenseHandlebarsError((e as Error).message), { cause: e });
  }
  const tpl = hb.compile(ast, { noEscape: true, strict: false });
  return (state) => tpl(state);
}

function condenseHandlebarsError(m: string): string {
  const lines = m.split('\n').filter((l) => l.trim() !== '');
  if (lines.length <= 1) return m;
  return `${lines[0]!.replace(/:$/, '')}: ${lines[lines.length - 1]}`;
}

function renderOrLiteral(text: string): Render {
  return text.includes('{{') ? compileTemplate(text) : () => text;
}

const STATE_PATH = /^[A-Za-z_][\w-]*(?:\.[\w-]+)+$/;

/** Names a mapper may read as state roots besides `in`, `parameters`, `session`, `message`. */
export interface NodeIdSet {
  has(id: string): boolean;
}

/** For mappers over another flow's state (a sub-flow's output), whose node ids are not known here. */
const ANY_NODE: NodeIdSet = { has: () => true };

/**
 * Arg mapping: a dotted path rooted at `in`, `parameters`, `session`, `message` or a node id reads
 * that value from the state; a string with `{{` is a Handlebars template; anything else is literal.
 * With `paths: false` only templates are special (cards, where text is text).
 */
export function compileMapper(value: unknown, nodeIds: NodeIdSet, paths = true): Mapper {
  if (typeof value === 'string') {
    if (value.includes('{{')) return compileTemplate(value);
    if (paths && STATE_PATH.test(value)) {
      const segs = value.split('.');
      const root = segs[0]!;
      if (STATE_ROOTS.has(root) || nodeIds.has(root)) return (s) => getPath(s, segs);
    }
    return () => value;
  }
  if (Array.isArray(value)) {
    const items = value.map((v) => compileMapper(v, nodeIds, paths));
    return (s) => items.map((m) => m(s));
  }
  if (isRecord(value)) {
    const entries = Object.entries(value).map(([k, v]) => [k, compileMapper(v, nodeIds, paths)] as const);
    return (s) => {
      const out: Record<string, unknown> = {};
      for (const [k, m] of entries) out[k] = m(s);
      return out;
    };
  }
  return () => value;
}

function templateOf(nodeId: string, path: (string | number)[], text: string): Render {
  return guard(nodeId, path, () => compileTemplate(text));
}

function guard<T>(nodeId: string, path: (string | number)[], fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CompileError) throw e;
    throw new CompileError(
      'invalid_template',
      path,
      `node '${nodeId}': invalid template: ${(e as Error).message}`,
    );
  }
}

function expressionOf(path: (string | number)[], src: string, what: string): Evaluator {
  try {
    return compileExpression(src);
  } catch (e) {
    const at = e instanceof ExpressionError ? ` at character ${e.offset + 1}` : '';
    throw new CompileError(
      'invalid_expression',
      path,
      `invalid ${what} "${src}": ${(e as Error).message}${at}`,
    );
  }
}

function compileExec(node: FlowNode, nodeIds: NodeIdSet): NodeExec {
  if (node.call) return compileCall(node, node.call);
  const op = node.operation;
  const cfg = node.config;
  switch (op) {
    case '':
      return { kind: 'invalid', message: `node '${node.id}' has no single operation` };
    case OP_QA: {
      const { spec, problems } = readQaSpec(cfg);
      const first = problems[0];
      if (first)
        throw new CompileError('invalid_config', [op, ...first.path], `node '${node.id}': ${first.message}`);
      return {
        kind: 'qa',
        spec,
        welcome:
          spec.welcome !== undefined
            ? guard(node.id, [op, 'welcome'], () => renderOrLiteral(spec.welcome!))
            : undefined,
        prompts: spec.questions.map((q, i) =>
          guard(node.id, [op, 'questions', i, 'prompt'], () => renderOrLiteral(q.prompt)),
        ),
      };
    }
    case OP_TEMPLATE: {
      const text =
        typeof cfg === 'string' ? cfg : isRecord(cfg) ? (cfg['text'] ?? cfg['template']) : undefined;
      if (typeof text !== 'string') {
        throw new CompileError(
          'invalid_config',
          [op],
          `node '${node.id}': templating.handlebars needs 'text'`,
        );
      }
      const path =
        typeof cfg === 'string' ? [op] : [op, isRecord(cfg) && 'text' in cfg ? 'text' : 'template'];
      return {
        kind: 'template',
        text: templateOf(node.id, path, text),
        reply: !(isRecord(cfg) && cfg['reply'] === false),
      };
    }
    case OP_REPLY:
    case OP_EMIT: {
      if (typeof cfg === 'string') return { kind: 'reply', text: templateOf(node.id, [op], cfg) };
      if (
        !isRecord(cfg) ||
        (cfg['text'] === undefined && cfg['card'] === undefined && cfg['choices'] === undefined)
      ) {
        throw new CompileError(
          'invalid_config',
          [op],
          `node '${node.id}': ${op} needs 'text', 'card' or 'choices'`,
        );
      }
      const exec: NodeExec = { kind: 'reply' };
      if (cfg['text'] !== undefined) {
        if (typeof cfg['text'] !== 'string') {
          throw new CompileError(
            'invalid_config',
            [op, 'text'],
            `node '${node.id}': ${op} text must be a string`,
          );
        }
        exec.text = templateOf(node.id, [op, 'text'], cfg['text']);
      }
      if (cfg['card'] !== undefined) {
        if (!isRecord(cfg['card'])) {
          throw new CompileError(
            'invalid_config',
            [op, 'card'],
            `node '${node.id}': ${op} card must be a mapping`,
          );
        }
        exec.card = guard(node.id, [op, 'card'], () => compileMapper(cfg['card'], nodeIds, false));
      }
      if (cfg['choices'] !== undefined) {
        if (!Array.isArray(cfg['choices']) || !cfg['choices'].every((c) => typeof c === 'string')) {
          throw new CompileError(
            'invalid_config',
            [op, 'choices'],
            `node '${node.id}': ${op} choices must be a list of strings`,
          );
        }
        exec.choices = guard(node.id, [op, 'choices'], () => compileMapper(cfg['choices'], nodeIds, false));
      }
      return exec;
    }
    case OP_FLOW_CALL:
      return compileFlowCall(node, nodeIds);
    default: {
      if (!isComponentNode(node))
        return { kind: 'invalid', message: `node '${node.id}': unknown operation '${op}'` };
      if (isExecNode(node) && op !== OP_MCP) {
        const c = isRecord(cfg) ? cfg['component'] : undefined;
        if (typeof c !== 'string' || c === '') {
          throw new CompileError(
            'invalid_config',
            [op],
            `node '${node.id}': ${op} needs 'component: <name>'`,
          );
        }
      }
      const argsPath =
        node.inMap !== undefined
          ? ['in_map']
          : op === OP_MCP
            ? [op, 'arguments']
            : isExecNode(node)
              ? [op, 'args']
              : [op];
      const exec: NodeExec = {
        kind: 'component',
        args: guard(node.id, argsPath, () => compileMapper(componentArgsOf(node), nodeIds)),
      };
      // `out_map` / `err_map` read the call's result / error as `out` / `error` besides the state.
      const withRoot: NodeIdSet = { has: (id) => id === 'out' || id === 'error' || nodeIds.has(id) };
      if (node.outMap !== undefined)
        exec.outMap = guard(node.id, ['out_map'], () => compileMapper(node.outMap, withRoot));
      if (node.errMap !== undefined)
        exec.errMap = guard(node.id, ['err_map'], () => compileMapper(node.errMap, withRoot));
      return exec;
    }
  }
}

const FLOW_CALL_KEYS = new Set(['flow_id', 'flow', 'input', 'output']);

/**
 * `flow.call: <flow id>` or `flow.call: { flow_id, input, output }` (`flow` is an alias of `flow_id`). `input` maps the caller's state
 * to the sub-flow's `in`; `output` (a path or mapping over the sub-flow's final state) picks what
 * lands at `<node>.payload`, by default the payload of the node the sub-flow ended on.
 */
function compileFlowCall(node: FlowNode, nodeIds: NodeIdSet): NodeExec {
  const op = OP_FLOW_CALL;
  const cfg = node.config;
  if (typeof cfg === 'string' && cfg !== '') return { kind: 'flow_call', flowId: cfg, input: () => ({}) };
  if (!isRecord(cfg)) {
    throw new CompileError(
      'invalid_config',
      [op],
      `node '${node.id}': flow.call needs 'flow: <flow id>' (and optionally 'input' and 'output')`,
    );
  }
  const unknown = Object.keys(cfg).filter((k) => !FLOW_CALL_KEYS.has(k));
  if (unknown.length > 0) {
    throw new CompileError(
      'invalid_config',
      [op, unknown[0]!],
      `node '${node.id}': flow.call has unknown key '${unknown[0]}' (allowed: flow_id, flow, input, output)`,
      true,
    );
  }
  if (cfg['flow_id'] !== undefined && cfg['flow'] !== undefined) {
    throw new CompileError(
      'invalid_config',
      [op, 'flow'],
      `node '${node.id}': flow.call has both 'flow_id' and 'flow'; 'flow' is an alias of 'flow_id', give one`,
      true,
    );
  }
  const idKey = cfg['flow'] !== undefined ? 'flow' : 'flow_id';
  const flowId = cfg[idKey];
  if (typeof flowId !== 'string' || flowId === '') {
    throw new CompileError(
      'invalid_config',
      flowId === undefined ? [op] : [op, idKey],
      `node '${node.id}': flow.call needs 'flow_id: <flow id>' naming a flow of the same pack`,
    );
  }
  const rawInput = cfg['input'];
  if (rawInput !== undefined && !isRecord(rawInput)) {
    throw new CompileError(
      'invalid_config',
      [op, 'input'],
      `node '${node.id}': flow.call input must be a mapping (it becomes the sub-flow's 'in')`,
    );
  }
  const exec: NodeExec = {
    kind: 'flow_call',
    flowId,
    input: guard(node.id, [op, 'input'], () => compileMapper(rawInput ?? {}, nodeIds)),
  };
  if (cfg['output'] !== undefined) {
    exec.output = guard(node.id, [op, 'output'], () => compileMapper(cfg['output'], ANY_NODE));
  }
  return exec;
}

/**
 * The scope flow-v1 templates read: `in` (and its alias `entry`), `prev` (the previous node's
 * output), `node.<id>` (a node's output), `nodes.<id>.payload`, `<id>.payload`, `parameters`,
 * `session` (also as `state`), `message` and `response` (the message's card data and text).
 */
export function v1Scope(state: State): Record<string, unknown> {
  const node: Record<string, unknown> = {};
  const nodes: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(state)) {
    if (STATE_ROOTS.has(k) || V1_ROOTS.has(k) || !isRecord(v)) continue;
    node[k] = v['payload'];
    nodes[k] = v;
  }
  return {
    ...state,
    entry: state['in'],
    state: state['session'],
    node,
    nodes,
  };
}

/** Roots of a flow-v1 frame's state besides STATE_ROOTS. */
export const V1_ROOTS: ReadonlySet<string> = new Set(['prev', 'response', 'entry', 'state', 'node', 'nodes']);

function mappingOf(nodeId: string, path: (string | number)[], value: unknown): MappingFn {
  return guard(nodeId, path, () => compileMapping(value));
}

function compileCall(node: FlowNode, call: NodeCall): NodeExec {
  const id = call.component;
  if (id.startsWith('emit.')) return { kind: 'emit', payload: mappingOf(node.id, ['input'], call.input) };
  if (id === 'session.wait') return { kind: 'wait' };
  if (id === 'flow.call') {
    const flowId = v1CallTarget(call.input);
    if (flowId === undefined) {
      throw new CompileError('invalid_config', ['input'], `node '${node.id}': flow.call needs 'flow_id'`);
    }
    const raw = isRecord(call.input) ? call.input['input'] : undefined;
    const input = mappingOf(node.id, ['input', 'input'], raw ?? {});
    return { kind: 'flow_call', flowId, input: (s) => input(v1Scope(s)) };
  }
  if (isBuiltinComponentId(id) && !isSupportedBuiltin(id)) {
    return {
      kind: 'invalid',
      message: `node '${node.id}': upstream builtin '${id}' is not supported by this runner`,
    };
  }
  const exec: NodeExec = { kind: 'call', component: id, input: mappingOf(node.id, ['input'], call.input) };
  if (call.operation !== undefined) exec.operation = call.operation;
  if (call.output !== undefined) exec.output = mappingOf(node.id, ['output'], call.output);
  if (call.errMap !== undefined) exec.errMap = mappingOf(node.id, ['err_map'], call.errMap);
  return exec;
}

function compileNode(node: FlowNode, nodeIds: NodeIdSet, problems: PlanProblem[]): NodePlan {
  const plan: NodePlan = { node, routes: [], exec: { kind: 'invalid', message: '' } };
  const fail = (e: unknown): void => {
    if (!(e instanceof CompileError)) throw e;
    problems.push({
      nodeId: node.id,
      path: e.path,
      code: e.code,
      message: e.message,
      ...(e.atKey ? { atKey: true } : {}),
    });
    if (plan.exec.kind !== 'invalid' || plan.exec.message === '')
      plan.exec = { kind: 'invalid', message: e.message };
  };
  try {
    plan.exec = compileExec(node, nodeIds);
  } catch (e) {
    fail(e);
  }
  if (node.when !== undefined) {
    try {
      plan.when = expressionOf(['when'], node.when, `'when' of node '${node.id}'`);
    } catch (e) {
      fail(e);
    }
  }
  node.routing.forEach((rule, i) => {
    const rp: RoutePlan = { rule };
    if (rule.condition !== undefined) {
      try {
        rp.cond = expressionOf(['routing', i, 'condition'], rule.condition, `condition of node '${node.id}'`);
      } catch (e) {
        fail(e);
      }
    }
    plan.routes.push(rp);
  });
  return plan;
}

export function compileFlowPlan(flow: FlowDefinition): FlowPlan {
  const nodeIds = new Set(flow.nodes.keys());
  const problems: PlanProblem[] = [];
  const nodes = new Map<string, NodePlan>();
  for (const node of flow.nodes.values()) nodes.set(node.id, compileNode(node, nodeIds, problems));
  return { nodes, problems };
}
