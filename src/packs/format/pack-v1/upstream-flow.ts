import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { checkFlowV1 } from '../../../flows/flow-v1-check.js';
import { importFlowV1, v1CallTarget } from '../../../flows/flow-v1-import.js';
import type { FlowIssue } from '../../../flows/flow.types.js';
import { compileYgtcToFlowV1 } from './compile-ygtc.js';
import {
  effectiveComponentId,
  effectiveOperation,
  isBuiltinComponentId,
  isComponentExecId,
  type FlowV1,
} from '../../../flows/flow-v1.js';
import {
  componentOfLocal,
  fileDigest,
  posIn,
  readSidecar,
  type Pos,
  type UpstreamFlowRef,
  type UpstreamPackYaml,
} from './upstream-pack-yaml.js';

/**
 * One flow of an upstream pack directory: its `.ygtc` checked against upstream's rules (greentic-flow's
 * schema and loader, digest §4.1), compiled to flow-v1 (greentic-flow `compile_flow`, legacy rules), its
 * `.ygtc.resolve.json` sidecar applied (a node bound to a pack component calls that component), then the
 * runner's own load-time checks of the flow-v1 result. Every issue carries `file:line:col`.
 */

/** Flow types upstream's compiler accepts (`map_flow_type`). */
const FLOW_TYPES = new Set(['messaging', 'event', 'events', 'component-config', 'job', 'http']);
/** Node keys that are not operation keys (upstream's loader). */
const RESERVED = new Set([
  'routing',
  'telemetry',
  'output',
  'in_map',
  'out_map',
  'err_map',
  'retry',
  'timeout',
  'when',
  'annotations',
  'meta',
  'operation',
]);
const ROUTE_KEYS = new Set(['to', 'out', 'status', 'reply', 'condition']);
const NODE_NAME = /^[a-zA-Z_][\w-]*$/;

export interface UpstreamFlowOptions {
  /** `build`: a node bound to a remote source (oci/repo/store) is an error, not a warning. */
  offline?: boolean;
  /** Operations each component describes (when it could be described). */
  operations?: ReadonlyMap<string, readonly string[]>;
}

export interface UpstreamFlowResult {
  /** The compiled flow, absent when the flow has errors. */
  flow?: FlowV1;
  issues: FlowIssue[];
  /** The sidecar read, if the flow has one. */
  sidecar?: string;
  /** Where a node is defined in the flow file (compiled flows only). */
  nodeAt?: (node: string) => Pos;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export async function compileUpstreamFlow(
  ref: UpstreamFlowRef,
  pack: UpstreamPackYaml,
  opts: UpstreamFlowOptions = {},
): Promise<UpstreamFlowResult> {
  const file = ref.abs;
  const issues: FlowIssue[] = [];
  const add = (pos: Pos, code: string, message: string, severity: FlowIssue['severity'] = 'error'): void => {
    issues.push({ severity, code, message, file, line: pos.line, column: pos.column });
  };
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).replace(/\r\n/g, '\n');
  } catch (e) {
    const gone = (e as NodeJS.ErrnoException).code === 'ENOENT';
    return {
      issues: [
        {
          severity: 'error',
          code: gone ? 'file_not_found' : 'file_unreadable',
          message: `flow '${ref.file}' listed in pack.yaml: ${gone ? 'no such file' : (e as Error).message}`,
          file: pack.file,
          ...ref.pos,
        },
      ],
    };
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const p = lc.linePos(e.pos[0]);
      add({ line: p.line, column: p.col }, 'yaml_syntax', e.message.split('\n')[0]!);
    }
    return { issues };
  }
  const at = (p: readonly (string | number)[], key = false): Pos => posIn(doc, lc, p, key);
  const raw = doc.toJS() as unknown;
  if (!isRecord(raw)) {
    add(at([]), 'flow_invalid', 'a flow must be a mapping');
    return { issues };
  }
  if (typeof raw['id'] !== 'string' || raw['id'] === '') add(at(['id']), 'missing_id', "'id' is required");
  const type = raw['type'];
  if (typeof type !== 'string') add(at(['type']), 'missing_type', "missing required property 'type'");
  else if (!FLOW_TYPES.has(type))
    add(
      at(['type']),
      'unknown_flow_type',
      `type '${type}' is not one upstream compiles (${[...FLOW_TYPES].join(', ')})`,
    );
  const nodes = isRecord(raw['nodes']) ? raw['nodes'] : {};
  const names = Object.keys(nodes);
  const nodePos = new Map(names.map((n) => [n, at(['nodes', n], true)]));
  if (names.length === 0)
    add(at(['nodes']), 'flow_empty', 'has no nodes: a message bound to it fails with flow_empty', 'warning');
  const legacy = typeof raw['schema_version'] !== 'number' || raw['schema_version'] < 2;

  for (const name of names) {
    const n = nodes[name];
    const pos = nodePos.get(name)!;
    if (!NODE_NAME.test(name))
      add(pos, 'invalid_node_name', `node name '${name}' must match ${NODE_NAME.source}`);
    if (!isRecord(n)) {
      add(pos, 'invalid_node', `node '${name}' must be a mapping`);
      continue;
    }
    const opKeys = Object.keys(n).filter((k) => !RESERVED.has(k));
    if (opKeys.length === 0)
      add(pos, 'missing_operation', `node '${name}' has no operation key (e.g. 'component.exec')`);
    else if (opKeys.length > 1 && !(opKeys.length === 2 && opKeys.includes('component.exec')))
      add(
        at(['nodes', name, opKeys[1]!], true),
        'multiple_operations',
        `node '${name}' must contain exactly one operation key, has ${opKeys.map((k) => `'${k}'`).join(', ')}`,
        legacy ? 'warning' : 'error',
      );
    const routing = n['routing'];
    if (routing === undefined || routing === null) continue;
    if (typeof routing === 'string') {
      if (routing !== 'out' && routing !== 'reply')
        add(
          at(['nodes', name, 'routing']),
          'invalid_routing',
          `node '${name}': routing shorthand must be 'out' or 'reply'`,
        );
      continue;
    }
    if (!Array.isArray(routing)) {
      add(
        at(['nodes', name, 'routing']),
        'invalid_routing',
        `node '${name}': routing must be a list, 'out' or 'reply'`,
      );
      continue;
    }
    routing.forEach((r: unknown, i) => {
      const rpos = at(['nodes', name, 'routing', i]);
      if (!isRecord(r))
        return add(rpos, 'invalid_routing', `node '${name}': routing[${i}] must be a mapping`);
      for (const k of Object.keys(r)) {
        if (k === 'next')
          add(
            at(['nodes', name, 'routing', i, k], true),
            'route_next_alias',
            `node '${name}': routing[${i}] uses 'next', which upstream's schema refuses (packc-built packs carry it and this runner reads it as 'to'): write 'to: ${String(r[k])}'`,
            'warning',
          );
        else if (!ROUTE_KEYS.has(k))
          add(
            at(['nodes', name, 'routing', i, k], true),
            'unknown_key',
            `node '${name}': routing[${i}]: unknown key '${k}' (allowed: ${[...ROUTE_KEYS].join(', ')})`,
          );
      }
      const to = r['to'] ?? r['next'];
      if (typeof to === 'string' && to !== 'out' && !(to in nodes))
        add(
          at(['nodes', name, 'routing', i, r['to'] !== undefined ? 'to' : 'next']),
          'unknown_route_target',
          `node '${name}' routes to unknown node '${to}' (nodes: ${names.join(', ')})`,
        );
    });
  }
  const start = typeof raw['start'] === 'string' ? raw['start'] : 'in' in nodes ? 'in' : (names[0] ?? '');
  if (typeof raw['start'] === 'string' && !(start in nodes))
    add(
      at(['start']),
      'unknown_start',
      `start node '${start}' is not one of the flow's nodes (${names.join(', ')})`,
    );
  if (issues.some((i) => i.severity === 'error')) return { issues };

  const componentIds = new Set(pack.components.map((c) => c.id));
  const flow = compileYgtcToFlowV1({ doc: raw, start, hasComponent: (id) => componentIds.has(id) });
  // The document's own entrypoints map joins `default` (which it may also set).
  if (isRecord(raw['entrypoints']))
    for (const [k, v] of Object.entries(raw['entrypoints']))
      if (typeof v === 'string') flow.entrypoints[k] = v;

  const result: UpstreamFlowResult = {
    issues,
    nodeAt: (n) => nodePos.get(n) ?? { line: 1, column: 1 },
  };
  const sidecar = await readSidecar(file);
  if (sidecar) {
    result.sidecar = sidecar.file;
    issues.push(...sidecar.issues);
    const sidecarIssue = (
      pos: Pos,
      code: string,
      message: string,
      severity: FlowIssue['severity'] = 'error',
    ): void => {
      issues.push({ severity, code, message, file: sidecar.file, line: pos.line, column: pos.column });
    };
    for (const b of sidecar.bindings) {
      const node = flow.nodes.find((n) => n.id === b.node);
      if (!node) {
        sidecarIssue(
          b.pos,
          'sidecar_unknown_node',
          `binds node '${b.node}', which flow '${flow.id}' (${path.basename(file)}) does not have (its nodes: ${names.join(', ')})`,
        );
        continue;
      }
      const current = effectiveComponentId(node);
      // Builtins run in the runner; upstream's sidecars list them with placeholder sources.
      if (current !== undefined && isBuiltinComponentId(current)) continue;
      if (b.kind !== 'local') {
        if (current !== undefined && componentIds.has(current)) continue;
        sidecarIssue(
          b.pos,
          'sidecar_remote_source',
          `node '${b.node}' of flow '${flow.id}' is bound to ${b.kind} '${b.ref}'; ${opts.offline ? 'this build is offline: ' : ''}put the component's wasm in the pack (pack.yaml components: [{id, wasm}]) and bind the node with {"kind": "local", "path": …}`,
          opts.offline ? 'error' : 'warning',
        );
        continue;
      }
      const comp = componentOfLocal(b, file, pack.components, pack.dir);
      if (!comp) {
        const have = pack.components.map((c) => `${c.id} (${c.wasm})`).join(', ') || 'none';
        sidecarIssue(
          b.pos,
          'sidecar_unknown_component',
          `binds node '${b.node}' of flow '${flow.id}' to '${b.ref}', which is no component of the pack (pack components: ${have})`,
        );
        continue;
      }
      if (current !== undefined && componentIds.has(current) && current !== comp.id) {
        sidecarIssue(
          b.pos,
          'sidecar_component_mismatch',
          `binds node '${b.node}' to component '${comp.id}', but the flow's node names component '${current}'`,
        );
        continue;
      }
      if (b.digest !== undefined && comp.wasmFile !== undefined) {
        const actual = await fileDigest(comp.wasmFile);
        if (actual.toLowerCase() !== b.digest.toLowerCase())
          sidecarIssue(
            b.pos,
            'sidecar_digest_mismatch',
            `node '${b.node}': pinned digest ${b.digest} differs from ${comp.wasm} (${actual}); the pack carries the file as it is now`,
            'warning',
          );
      }
      if (isComponentExecId(node.component.id)) {
        const operation = effectiveOperation(node);
        node.component = { id: comp.id, ...(operation !== undefined ? { operation } : {}) };
      }
    }
  }

  const nodeIssue = (i: FlowIssue): FlowIssue => {
    const name = /node '([^']+)'/.exec(i.message)?.[1];
    const pos = (name !== undefined ? nodePos.get(name) : undefined) ?? { line: 1, column: 1 };
    return { ...i, file, line: pos.line, column: pos.column };
  };
  const imported = importFlowV1(flow, file);
  issues.push(...imported.issues.map(nodeIssue));
  if (imported.flow) issues.push(...checkFlowV1(imported.flow, componentIds).map(nodeIssue));

  if (opts.operations) {
    for (const node of flow.nodes) {
      const id = effectiveComponentId(node);
      const ops = id !== undefined ? opts.operations.get(id) : undefined;
      const op = effectiveOperation(node);
      // A component that describes no operations (upstream's bare `node` world) cannot be checked.
      if (!ops || ops.length === 0 || op === undefined || ops.includes(op)) continue;
      // A warning, as upstream's card packs call `run` on a component that describes only `card`.
      issues.push(
        nodeIssue({
          severity: 'warning',
          code: 'unknown_operation',
          message: `node '${node.id}' calls operation '${op}', which component '${id}' does not describe (it describes: ${ops.join(', ') || 'none'})`,
          file,
          line: 1,
          column: 1,
        }),
      );
    }
  }
  if (!issues.some((i) => i.severity === 'error')) result.flow = flow;
  return result;
}

/**
 * Pack-level: every `flow.call` names one of the pack's flows (`flow_id`, or `flow`). `nodeAt` gives a
 * node's position in its flow file.
 */
export function checkFlowCalls(
  flows: readonly { flow: FlowV1; file: string; nodeAt: (node: string) => Pos }[],
): FlowIssue[] {
  const ids = new Set(flows.map((f) => f.flow.id));
  const issues: FlowIssue[] = [];
  for (const { flow, file, nodeAt } of flows) {
    for (const node of flow.nodes) {
      if (effectiveComponentId(node) !== 'flow.call') continue;
      const target = v1CallTarget(node.input.mapping);
      if (target === undefined || ids.has(target)) continue;
      issues.push({
        severity: 'error',
        code: 'unknown_flow',
        message: `node '${node.id}' of flow '${flow.id}' calls flow '${target}', which the pack does not have (pack flows: ${[...ids].join(', ')})`,
        file,
        ...nodeAt(node.id),
      });
    }
  }
  return issues;
}
