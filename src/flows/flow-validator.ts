import { readFile } from 'node:fs/promises';
import { FlowValidationError } from '../common/errors.js';
import type { PreparedComponent } from '../core/component-runtime.js';
import {
  formatIssue,
  type FlowDefinition,
  type FlowIssue,
  type FlowNode,
  type SourceLoc,
} from './flow.types.js';
import { planFor } from './flow-plan.js';
import { locateInFlow, sourceOf } from './flow-source.js';
import {
  componentTargetOf,
  isComponentNode,
  OP_FLOW_CALL,
  OP_QA,
  resolveOperation,
  STATE_ROOTS,
} from './operations.js';
import { parseFlowSource } from './ygtc-loader.js';

export { FlowValidationError };

export interface ValidateOptions {
  /**
   * The pack's components. When given, component nodes must name one of them; a Map also lets
   * the validator check operations against what 0.6 components declare.
   */
  components?: ReadonlyMap<string, PreparedComponent> | ReadonlySet<string>;
}

interface Edge {
  from: string;
  to: string;
  rule: number;
}

/** Semantic checks of a parsed flow: graph, built-in node configs, components. */
export function validateFlow(flow: FlowDefinition, opts: ValidateOptions = {}): FlowIssue[] {
  const issues: FlowIssue[] = [];
  const add = (severity: FlowIssue['severity'], code: string, message: string, loc: SourceLoc): void => {
    issues.push({ severity, code, message, file: loc.file, line: loc.line, column: loc.column });
  };
  const nodeLoc = (
    id: string,
    path: readonly (string | number)[] = [],
    at: 'key' | 'value' = 'key',
  ): SourceLoc => locateInFlow(flow, ['nodes', id, ...path], at);

  // The loader reports these with the offending keys; a FlowDefinition built elsewhere has no source.
  if (!sourceOf(flow)) {
    for (const node of flow.nodes.values()) {
      if (node.operation === '') {
        add(
          'error',
          'node_operation_count',
          `node '${node.id}' has no operation key: it needs exactly one`,
          node.loc,
        );
      }
    }
  }

  const startKnown = flow.nodes.has(flow.start);
  if (!startKnown && flow.nodes.size > 0) {
    const hasStart = typeof flow.raw['start'] === 'string';
    add(
      'error',
      'unknown_start',
      `start names unknown node '${flow.start}' (nodes: ${[...flow.nodes.keys()].join(', ')})`,
      hasStart ? locateInFlow(flow, ['start'], 'value') : { file: flow.file, line: 1, column: 1 },
    );
  }

  const edges = new Map<string, Edge[]>();
  for (const node of flow.nodes.values()) {
    const out: Edge[] = [];
    let unconditional = -1;
    node.routing.forEach((rule, i) => {
      const ruleLoc = rule.loc ?? nodeLoc(node.id, ['routing', i], 'value');
      if (unconditional >= 0) {
        add(
          'warning',
          'unreachable_route',
          `node '${node.id}': routing rule ${i + 1} is never taken: rule ${unconditional + 1} has no condition`,
          ruleLoc,
        );
      } else if (rule.condition === undefined && rule.status === undefined) {
        unconditional = i;
      }
      if (rule.to === undefined) return;
      if (flow.nodes.has(rule.to)) {
        out.push({ from: node.id, to: rule.to, rule: i });
      } else {
        add(
          'error',
          'unknown_route_target',
          `node '${node.id}' routes to unknown node '${rule.to}'`,
          nodeLoc(node.id, ['routing', i, 'to'], 'value'),
        );
      }
    });
    edges.set(node.id, out);
  }

  for (const p of planFor(flow).problems) {
    add('error', p.code, p.message, nodeLoc(p.nodeId, p.path, p.atKey ? 'key' : 'value'));
  }

  for (const node of flow.nodes.values()) {
    const component = isComponentNode(node);
    if (node.retry !== undefined && !component && node.operation !== '') {
      add(
        'warning',
        'retry_ignored',
        `node '${node.id}': retry applies to component calls only; '${node.operation}' is not retried`,
        nodeLoc(node.id, ['retry']),
      );
    }
    if (
      node.timeoutMs !== undefined &&
      !component &&
      node.operation !== OP_FLOW_CALL &&
      node.operation !== ''
    ) {
      add(
        'warning',
        'timeout_ignored',
        `node '${node.id}': timeout applies to component calls and flow.call only; '${node.operation}' has none`,
        nodeLoc(node.id, ['timeout']),
      );
    }
    if (STATE_ROOTS.has(node.id) && node.operation !== OP_QA && node.operation !== '') {
      add(
        'warning',
        'shadowed_payload',
        `node '${node.id}' is named like the state root '${node.id}', so '${node.id}.payload' cannot be read; rename it`,
        node.loc,
      );
    }
  }

  if (startKnown) {
    const seen = new Set<string>([flow.start]);
    const queue = [flow.start];
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      for (const e of edges.get(id) ?? []) {
        if (!seen.has(e.to)) {
          seen.add(e.to);
          queue.push(e.to);
        }
      }
    }
    for (const node of flow.nodes.values()) {
      if (!seen.has(node.id)) {
        add(
          'warning',
          'unreachable_node',
          `node '${node.id}' is unreachable from the start node '${flow.start}'`,
          node.loc,
        );
      }
    }
  }

  for (const cycle of cyclesWithoutPark(flow, edges)) {
    const closing = cycle.closing;
    add(
      'error',
      'cycle_without_park',
      `cycle ${[...cycle.path, cycle.path[0]].join(' -> ')} never parks for input (no qa.process node on it): one message would loop until the step limit`,
      nodeLoc(closing.from, ['routing', closing.rule, 'to'], 'value'),
    );
  }

  if (opts.components) checkComponents(flow, opts.components, add, nodeLoc);

  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}

function isComponentMap(
  c: ReadonlyMap<string, PreparedComponent> | ReadonlySet<string>,
): c is ReadonlyMap<string, PreparedComponent> {
  return typeof (c as ReadonlyMap<string, PreparedComponent>).get === 'function';
}

function checkComponents(
  flow: FlowDefinition,
  components: ReadonlyMap<string, PreparedComponent> | ReadonlySet<string>,
  add: (severity: FlowIssue['severity'], code: string, message: string, loc: SourceLoc) => void,
  nodeLoc: (id: string, path?: readonly (string | number)[], at?: 'key' | 'value') => SourceLoc,
): void {
  const has = (name: string): boolean => components.has(name);
  const names = [...components.keys()];
  for (const node of flow.nodes.values()) {
    const target = componentTargetOf(node, has);
    if (!target) continue;
    if (!has(target.component)) {
      const [, ...fallbacks] = target.tried;
      const message =
        target.componentPath.length > 0 || fallbacks.length === 0
          ? `node '${node.id}': component '${target.component}' is not in the pack`
          : `node '${node.id}': operation '${node.operation}' names no component of the pack (looked for ${target.tried.map((t) => `'${t}'`).join(', ')})`;
      add(
        'error',
        'unknown_component',
        `${message} (pack components: ${names.length ? names.join(', ') : 'none'})`,
        target.componentPath.length
          ? nodeLoc(node.id, target.componentPath, 'value')
          : nodeLoc(node.id, [node.operation]),
      );
      continue;
    }
    if (!isComponentMap(components)) continue;
    const pc = components.get(target.component)!;
    const r = resolveOperation(pc, target.operation);
    if (!r.ok) {
      add(
        'error',
        'unknown_operation',
        `node '${node.id}': ${r.message}`,
        target.operationPath.length
          ? nodeLoc(node.id, target.operationPath, 'value')
          : nodeLoc(node.id, [node.operation]),
      );
    }
  }
}

interface Cycle {
  path: string[];
  closing: Edge;
}

/** A qa.process node with questions parks for input; a welcome-only one (upstream allows it) does not. */
function asksQuestions(node: FlowNode | undefined): boolean {
  if (node?.operation !== OP_QA) return false;
  const qs = isRecordValue(node.config) ? node.config['questions'] : undefined;
  return Array.isArray(qs) && qs.length > 0;
}

/** One cycle per strongly connected component that holds no qa.process node that asks. */
function cyclesWithoutPark(flow: FlowDefinition, edges: ReadonlyMap<string, Edge[]>): Cycle[] {
  const order = [...flow.nodes.keys()];
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const sccs: string[][] = [];
  let counter = 0;

  const strong = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const e of edges.get(v) ?? []) {
      if (!index.has(e.to)) {
        strong(e.to);
        low.set(v, Math.min(low.get(v)!, low.get(e.to)!));
      } else if (onStack.has(e.to)) {
        low.set(v, Math.min(low.get(v)!, index.get(e.to)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      sccs.push(scc);
    }
  };
  for (const v of order) if (!index.has(v)) strong(v);

  const cycles: Cycle[] = [];
  for (const scc of sccs) {
    const members = new Set(scc);
    const selfLoop = scc.length === 1 && (edges.get(scc[0]!) ?? []).some((e) => e.to === scc[0]);
    if (scc.length === 1 && !selfLoop) continue;
    if (scc.some((id) => asksQuestions(flow.nodes.get(id)))) continue;
    const first = order.find((id) => members.has(id))!;
    cycles.push(shortestCycle(first, members, edges));
  }
  return cycles.sort((a, b) => order.indexOf(a.path[0]!) - order.indexOf(b.path[0]!));
}

function shortestCycle(
  start: string,
  members: ReadonlySet<string>,
  edges: ReadonlyMap<string, Edge[]>,
): Cycle {
  const parent = new Map<string, Edge>();
  const queue = [start];
  for (let v = queue.shift(); v !== undefined; v = queue.shift()) {
    for (const e of edges.get(v) ?? []) {
      if (!members.has(e.to)) continue;
      if (e.to === start) {
        const path = [v];
        for (let p = parent.get(v); p; p = parent.get(p.from)) path.unshift(p.from);
        return { path, closing: e };
      }
      if (!parent.has(e.to)) {
        parent.set(e.to, e);
        queue.push(e.to);
      }
    }
  }
  // Unreachable for a real SCC; keeps the types honest.
  return { path: [start], closing: { from: start, to: start, rule: 0 } };
}

/** Parse and validate in one pass: every syntax, schema and semantic issue of a flow file. */
export function checkFlow(
  text: string,
  file: string,
  opts: ValidateOptions = {},
): { flow?: FlowDefinition; issues: FlowIssue[] } {
  const parsed = parseFlowSource(text, file);
  if (!parsed.partial) return { issues: parsed.issues };
  const issues = [...parsed.issues, ...validateFlow(parsed.partial, opts)].sort(
    (a, b) => a.line - b.line || a.column - b.column,
  );
  return issues.some((i) => i.severity === 'error') ? { issues } : { flow: parsed.partial, issues };
}

/** Throws FlowValidationError listing every issue when any is an error. */
export function throwIfInvalid(issues: readonly FlowIssue[], what: string): void {
  if (!issues.some((i) => i.severity === 'error')) return;
  const errors = issues.filter((i) => i.severity === 'error').length;
  throw new FlowValidationError(
    `${what} is invalid (${errors} error${errors === 1 ? '' : 's'}):\n${issues.map(formatIssue).join('\n')}`,
    issues.map((i) => ({
      file: i.file,
      line: i.line,
      column: i.column,
      message: `${i.severity}: ${i.message}`,
    })),
  );
}

/** Validates a parsed flow; throws FlowValidationError on errors, returns the flow otherwise. */
export function assertValid(flow: FlowDefinition, opts: ValidateOptions = {}): FlowDefinition {
  throwIfInvalid(validateFlow(flow, opts), `flow '${flow.id}' (${flow.file})`);
  return flow;
}

/** Parses and validates `.ygtc` text; throws FlowValidationError with every issue on errors. */
export function assertValidSource(text: string, file: string, opts: ValidateOptions = {}): FlowDefinition {
  const { flow, issues } = checkFlow(text, file, opts);
  throwIfInvalid(issues, `flow ${file}`);
  return flow!;
}

export async function loadValidFlowFile(path: string, opts: ValidateOptions = {}): Promise<FlowDefinition> {
  return assertValidSource(await readFile(path, 'utf8'), path, opts);
}

/** The flow id a `flow.call` node names (`flow.call: id` or `flow.call: { flow_id: id }`, `flow` its alias). */
export function callTargetOf(node: Pick<FlowNode, 'operation' | 'config'>): string | undefined {
  if (node.operation !== OP_FLOW_CALL) return undefined;
  const cfg = node.config;
  if (typeof cfg === 'string' && cfg !== '') return cfg;
  if (cfg !== null && typeof cfg === 'object' && !Array.isArray(cfg)) {
    const f = (cfg as Record<string, unknown>)['flow'] ?? (cfg as Record<string, unknown>)['flow_id'];
    if (typeof f === 'string' && f !== '') return f;
  }
  return undefined;
}

function isRecordValue(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function callTargetLoc(flow: FlowDefinition, nodeId: string): SourceLoc {
  const node = flow.nodes.get(nodeId);
  if (typeof node?.config === 'string') return locateInFlow(flow, ['nodes', nodeId, OP_FLOW_CALL], 'value');
  const key = isRecordValue(node?.config) && node.config['flow'] === undefined ? 'flow_id' : 'flow';
  return locateInFlow(flow, ['nodes', nodeId, OP_FLOW_CALL, key], 'value');
}

interface CallEdge {
  from: string;
  to: string;
  nodeId: string;
}

/**
 * Pack-level check of `flow.call`: a call must name a flow of the pack, and every cycle of calls
 * (a flow calling itself, directly or through others) is an error, reported once at the call
 * that closes it; such a pack would recurse until the depth limit on every message that reaches
 * the call.
 */
export function validateFlowCalls(flows: Iterable<FlowDefinition>): FlowIssue[] {
  const byId = new Map<string, FlowDefinition>();
  for (const f of flows) if (!byId.has(f.id)) byId.set(f.id, f);
  const issues: FlowIssue[] = [];
  const edges = new Map<string, CallEdge[]>();
  for (const f of byId.values()) {
    const out: CallEdge[] = [];
    for (const node of f.nodes.values()) {
      const to = callTargetOf(node);
      if (to === undefined) continue;
      if (byId.has(to)) {
        out.push({ from: f.id, to, nodeId: node.id });
      } else {
        issues.push({
          severity: 'error',
          code: 'unknown_flow',
          message: `node '${node.id}': flow.call names flow '${to}', which is not in the pack (pack flows: ${[...byId.keys()].join(', ')})`,
          ...callTargetLoc(f, node.id),
        });
      }
    }
    edges.set(f.id, out);
  }

  const reported = new Set<string>();
  const color = new Map<string, 'grey' | 'black'>();
  const stack: CallEdge[] = [];
  const visit = (id: string): void => {
    color.set(id, 'grey');
    for (const e of edges.get(id) ?? []) {
      const c = color.get(e.to);
      if (c === 'grey') {
        const start = stack.findIndex((s) => s.from === e.to);
        const cycle = [...(start >= 0 ? stack.slice(start) : []), e];
        const key = [...cycle.map((x) => x.from)].sort().join('|');
        if (!reported.has(key)) {
          reported.add(key);
          const path = [...cycle.map((x) => x.from), e.to].join(' -> ');
          const flow = byId.get(e.from)!;
          const loc = callTargetLoc(flow, e.nodeId);
          issues.push({
            severity: 'error',
            code: 'flow_call_cycle',
            message:
              cycle.length === 1
                ? `node '${e.nodeId}': flow '${e.from}' calls itself with flow.call; a flow may not call itself, directly or through others`
                : `node '${e.nodeId}': flow.call closes a cycle of calls (${path}); a flow may not call itself, directly or through others`,
            file: loc.file,
            line: loc.line,
            column: loc.column,
          });
        }
      } else if (c === undefined) {
        stack.push(e);
        visit(e.to);
        stack.pop();
      }
    }
    color.set(id, 'black');
  };
  for (const id of byId.keys()) if (!color.has(id)) visit(id);
  return issues;
}

/**
 * Every issue of a pack's flows: each flow on its own (with the pack's components known),
 * duplicate ids, `flow.call` targets and cycles.
 */
export function validatePack(flows: readonly FlowDefinition[], opts: ValidateOptions = {}): FlowIssue[] {
  const ids = new Map<string, FlowDefinition>();
  const issues: FlowIssue[] = [];
  for (const f of flows) {
    const first = ids.get(f.id);
    if (first) {
      issues.push({
        severity: 'error',
        code: 'flow_duplicate',
        message: `flow id '${f.id}' is also defined in ${first.file}`,
        ...locateInFlow(f, ['id'], 'value'),
      });
    } else {
      ids.set(f.id, f);
    }
  }
  for (const f of flows) issues.push(...validateFlow(f, opts));
  issues.push(...validateFlowCalls(flows));
  return issues;
}
