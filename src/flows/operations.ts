import { WORLD_V06, type PreparedComponent } from '../core/component-runtime.js';
import type { FlowNode } from './flow.types.js';

export const OP_QA = 'qa.process';
export const OP_TEMPLATE = 'templating.handlebars';
export const OP_COMPONENT_EXEC = 'component.exec';
export const OP_MCP_EXEC = 'mcp.exec';
/** Upstream's MCP node: `mcp: { server, tool, arguments?, output? }` calls `tool` of the pack component `server`. */
export const OP_MCP = 'mcp';
export const OP_REPLY = 'reply';
export const OP_EMIT = 'emit';
export const OP_FLOW_CALL = 'flow.call';

export const BUILTIN_OPERATIONS: ReadonlySet<string> = new Set([
  OP_QA,
  OP_TEMPLATE,
  OP_COMPONENT_EXEC,
  OP_MCP_EXEC,
  OP_MCP,
  OP_REPLY,
  OP_EMIT,
  OP_FLOW_CALL,
]);

/** Roots of the flow state that a node id cannot take over. */
export const STATE_ROOTS: ReadonlySet<string> = new Set(['in', 'parameters', 'session', 'message']);

/** Which component (and operation) a component node calls, and where the names were written. */
export interface ComponentTarget {
  component: string;
  /** Absent: the component's default operation. */
  operation?: string;
  /** Path (under the node) of the value naming the component / operation, for issue locations. */
  componentPath: readonly string[];
  operationPath: readonly string[];
  /** Names tried, for "not in the pack" messages. */
  tried: string[];
}

export function isComponentNode(node: Pick<FlowNode, 'operation'>): boolean {
  return node.operation !== '' && (!BUILTIN_OPERATIONS.has(node.operation) || isExecNode(node));
}

export function isExecNode(node: Pick<FlowNode, 'operation'>): boolean {
  return node.operation === OP_COMPONENT_EXEC || node.operation === OP_MCP_EXEC || node.operation === OP_MCP;
}

/** Keys of a `component.exec` config that say what to call rather than what to pass. */
const EXEC_KEYS = new Set(['component', 'operation', 'action', 'args']);

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/**
 * `component.exec`/`mcp.exec` name the component in their config. Any other `namespace.op` key
 * names the component by the whole key if the pack has one of that name, else by its longest
 * dotted prefix that the pack has (the rest is the operation). Without `has` (no pack known)
 * the split is at the last dot. Returns undefined for built-ins and malformed exec configs.
 */
export function componentTargetOf(
  node: Pick<FlowNode, 'operation' | 'config' | 'operationName'>,
  has?: (name: string) => boolean,
): ComponentTarget | undefined {
  const op = node.operation;
  if (op === OP_MCP) {
    const cfg = asRecord(node.config);
    const server = cfg?.['server'];
    const tool = cfg?.['tool'];
    if (typeof server !== 'string' || server === '') return undefined;
    return {
      component: server,
      ...(typeof tool === 'string' && tool !== '' ? { operation: tool } : {}),
      componentPath: [op, 'server'],
      operationPath: [op, 'tool'],
      tried: [server],
    };
  }
  if (isExecNode(node)) {
    const cfg = asRecord(node.config);
    const component = cfg?.['component'];
    if (typeof component !== 'string' || component === '') return undefined;
    const opKey = typeof cfg?.['operation'] === 'string' ? 'operation' : 'action';
    const inConfig = cfg?.[opKey];
    // Upstream also writes the operation as a node-level sibling: `component.exec: {...}` + `operation: op`.
    const operation = typeof inConfig === 'string' && inConfig !== '' ? inConfig : node.operationName;
    return {
      component,
      operation,
      componentPath: [op, 'component'],
      operationPath:
        typeof inConfig === 'string' ? [op, opKey] : node.operationName !== undefined ? ['operation'] : [op],
      tried: [component],
    };
  }
  if (op === '' || BUILTIN_OPERATIONS.has(op)) return undefined;
  const tried = [op];
  if (has?.(op)) return { component: op, componentPath: [], operationPath: [], tried };
  const dots: number[] = [];
  for (let i = op.length - 1; i > 0; i--) if (op[i] === '.') dots.push(i);
  for (const d of dots) {
    const name = op.slice(0, d);
    tried.push(name);
    if (has?.(name))
      return { component: name, operation: op.slice(d + 1), componentPath: [], operationPath: [], tried };
  }
  const last = dots[0];
  if (last === undefined) return { component: op, componentPath: [], operationPath: [], tried };
  return {
    component: op.slice(0, last),
    operation: op.slice(last + 1),
    componentPath: [],
    operationPath: [],
    tried,
  };
}

/**
 * A component call's args: the node's `in_map` when it has one; else `arguments` of an `mcp` node;
 * `args` of an exec node, or (upstream's form) its fields other than component/operation; or the
 * whole config of a `namespace.op` node.
 */
export function componentArgsOf(node: Pick<FlowNode, 'operation' | 'config' | 'inMap'>): unknown {
  if (node.inMap !== undefined) return node.inMap;
  const cfg = asRecord(node.config);
  if (node.operation === OP_MCP) return cfg?.['arguments'];
  if (!isExecNode(node)) return node.config;
  if (cfg === undefined || cfg['args'] !== undefined) return cfg?.['args'];
  const fields = Object.entries(cfg).filter(([k]) => !EXEC_KEYS.has(k));
  return fields.length > 0 ? Object.fromEntries(fields) : undefined;
}

export type OperationResolution = { ok: true; operation: string } | { ok: false; message: string };

/**
 * Declared operations are checked only for 0.6 components that list them. Without a named
 * operation: the component manifest's `default_operation`, else its only declared operation, else
 * `execute` for a 0.1 component (its single export); never a made-up name for a 0.6 component.
 */
export function resolveOperation(pc: PreparedComponent, requested: string | undefined): OperationResolution {
  const declared = pc.operations.map((o) => o.name);
  const checks = pc.world === WORLD_V06 && declared.length > 0;
  if (requested !== undefined) {
    if (checks && !declared.includes(requested)) {
      return {
        ok: false,
        message: `component '${pc.name}' has no operation '${requested}' (it declares: ${declared.join(', ')})`,
      };
    }
    return { ok: true, operation: requested };
  }
  if (pc.defaultOperation) return { ok: true, operation: pc.defaultOperation };
  if (declared.length === 1) return { ok: true, operation: declared[0]! };
  if (pc.world !== WORLD_V06) return { ok: true, operation: 'execute' };
  return {
    ok: false,
    message:
      declared.length > 0
        ? `component '${pc.name}' declares several operations (${declared.join(', ')}) and no default_operation; name one with 'operation'`
        : `component '${pc.name}' declares no operations and no default_operation; name one with 'operation'`,
  };
}
