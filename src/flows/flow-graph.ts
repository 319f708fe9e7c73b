import type { FlowDefinition, FlowNode } from './flow.types.js';
import { callTargetOf } from './flow-validator.js';
import { componentTargetOf, isComponentNode, OP_EMIT, OP_QA, OP_REPLY, OP_TEMPLATE } from './operations.js';

/**
 * A picture of a flow: its nodes (with their operation and what they call), the routes between
 * them with their conditions, where it starts and where it ends. Rendered as Graphviz DOT,
 * Mermaid, or SVG (DOT laid out by Graphviz compiled to WebAssembly: `@viz-js/viz`, no browser).
 */

export type GraphNodeKind = 'question' | 'component' | 'call' | 'message' | 'other';

export interface GraphNode {
  id: string;
  operation: string;
  kind: GraphNodeKind;
  /** What the node calls: a component (and operation) or a sub-flow. */
  target?: string;
  when?: string;
  start: boolean;
}

export interface GraphEdge {
  from: string;
  /** A node id, or undefined for a rule that ends the flow. */
  to?: string;
  condition?: string;
  /** `out` or `reply` for a rule that ends the flow. */
  end?: 'out' | 'reply';
  /** Rule number (1-based) within the node's routing. */
  rule: number;
}

export interface FlowGraph {
  id: string;
  title?: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

function kindOf(node: FlowNode): GraphNodeKind {
  if (node.call) {
    const id = node.call.component;
    if (id === 'flow.call') return 'call';
    if (id.startsWith('emit.')) return 'message';
    return id === 'session.wait' ? 'other' : 'component';
  }
  if (node.operation === OP_QA) return 'question';
  if (callTargetOf(node) !== undefined) return 'call';
  if (isComponentNode(node)) return 'component';
  if (node.operation === OP_TEMPLATE || node.operation === OP_REPLY || node.operation === OP_EMIT)
    return 'message';
  return 'other';
}

export function flowGraph(flow: FlowDefinition): FlowGraph {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  for (const node of flow.nodes.values()) {
    const g: GraphNode = {
      id: node.id,
      operation: node.operation || '(no operation)',
      kind: kindOf(node),
      start: node.id === flow.start,
    };
    const callee = callTargetOf(node);
    if (callee !== undefined) g.target = `flow ${callee}`;
    // flow-v1 nodes name their component and operation outright.
    const component = node.call
      ? { component: node.call.component, operation: node.call.operation }
      : componentTargetOf(node);
    if (component && g.kind === 'component') {
      g.target = component.operation ? `${component.component}.${component.operation}` : component.component;
    }
    if (node.when !== undefined) g.when = node.when;
    nodes.push(g);
    if (node.routing.length === 0) {
      edges.push({ from: node.id, end: 'out', rule: 0 });
      continue;
    }
    node.routing.forEach((r, i) => {
      const e: GraphEdge = { from: node.id, rule: i + 1 };
      if (r.to !== undefined) e.to = r.to;
      else e.end = r.reply ? 'reply' : 'out';
      if (r.condition !== undefined) e.condition = r.condition;
      edges.push(e);
    });
  }
  return { id: flow.id, ...(flow.title ? { title: flow.title } : {}), nodes, edges };
}

// ---------------------------------------------------------------------------------------------
// DOT

function dotString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

const DOT_STYLE: Record<GraphNodeKind, string> = {
  question: 'shape=box, style="rounded,filled", fillcolor="#e3f2fd"',
  component: 'shape=component, style=filled, fillcolor="#fff3e0"',
  call: 'shape=box3d, style=filled, fillcolor="#ede7f6"',
  message: 'shape=note, style=filled, fillcolor="#e8f5e9"',
  other: 'shape=box',
};

/** Ids of the start marker and the end node. */
const START = '__start__';
const END = '__end__';

function nodeLabel(n: GraphNode): string {
  const lines = [n.id, n.operation];
  if (n.target !== undefined) lines.push(`→ ${n.target}`);
  if (n.when !== undefined) lines.push(`when ${n.when}`);
  return lines.join('\n');
}

function edgeLabel(e: GraphEdge): string | undefined {
  const parts: string[] = [];
  if (e.condition !== undefined) parts.push(e.condition);
  if (e.end === 'reply') parts.push('reply');
  return parts.length > 0 ? parts.join('\n') : undefined;
}

export function toDot(flow: FlowDefinition): string {
  const g = flowGraph(flow);
  const ids = new Set(g.nodes.map((n) => n.id));
  // A node may be called __start__ or __end__; keep the markers distinct from it.
  const start = ids.has(START) ? `${START}_` : START;
  const end = ids.has(END) ? `${END}_` : END;
  const out: string[] = [];
  out.push(`digraph ${dotString(g.id)} {`);
  out.push(
    `  graph [label=${dotString(g.title ? `${g.title} (${g.id})` : g.id)}, labelloc=t, fontname="Helvetica", rankdir=TB];`,
  );
  out.push('  node [fontname="Helvetica", fontsize=11];');
  out.push('  edge [fontname="Helvetica", fontsize=10];');
  out.push(
    `  ${dotString(start)} [shape=circle, label="", width=0.2, style=filled, fillcolor=black, tooltip="start"];`,
  );
  out.push(`  ${dotString(end)} [shape=doublecircle, label="end", width=0.35, fontsize=9];`);
  for (const n of g.nodes) {
    out.push(
      `  ${dotString(n.id)} [label=${dotString(nodeLabel(n))}, ${DOT_STYLE[n.kind]}, tooltip=${dotString(n.operation)}];`,
    );
  }
  const first = g.nodes.find((n) => n.start);
  if (first) out.push(`  ${dotString(start)} -> ${dotString(first.id)};`);
  for (const e of g.edges) {
    const target = e.to !== undefined && ids.has(e.to) ? e.to : end;
    const attrs: string[] = [];
    const label = edgeLabel(e);
    if (label !== undefined) attrs.push(`label=${dotString(label)}`);
    if (e.to !== undefined && !ids.has(e.to))
      attrs.push('color=red', `xlabel=${dotString(`unknown node ${e.to}`)}`);
    if (e.end !== undefined) attrs.push('style=dashed');
    out.push(
      `  ${dotString(e.from)} -> ${dotString(target)}${attrs.length ? ` [${attrs.join(', ')}]` : ''};`,
    );
  }
  out.push('}');
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Mermaid

function mermaidText(s: string): string {
  // Inside a quoted label Mermaid reads entity codes; quotes and angle brackets would end or break it.
  return s.replace(/&/g, '#amp;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

const MERMAID_SHAPE: Record<GraphNodeKind, [string, string]> = {
  question: ['([', '])'],
  component: ['[[', ']]'],
  call: ['[/', '/]'],
  message: ['[', ']'],
  other: ['[', ']'],
};

export function toMermaid(flow: FlowDefinition): string {
  const g = flowGraph(flow);
  // Node names like `end` or `graph` are Mermaid keywords: use positional ids, names as labels.
  const mid = new Map(g.nodes.map((n, i) => [n.id, `n${i}`]));
  const out: string[] = [];
  out.push('flowchart TD');
  out.push(`  %% flow ${mermaidText(g.id)}`);
  out.push('  start_((start))');
  out.push('  end_(((end)))');
  for (const n of g.nodes) {
    const [open, close] = MERMAID_SHAPE[n.kind];
    out.push(`  ${mid.get(n.id)}${open}"${mermaidText(nodeLabel(n)).replace(/\n/g, '<br/>')}"${close}`);
  }
  const first = g.nodes.find((n) => n.start);
  if (first) out.push(`  start_ --> ${mid.get(first.id)}`);
  for (const e of g.edges) {
    const target = e.to !== undefined ? (mid.get(e.to) ?? 'end_') : 'end_';
    const label = edgeLabel(e);
    const arrow = e.end !== undefined ? '-.->' : '-->';
    out.push(
      `  ${mid.get(e.from)} ${arrow}${label !== undefined ? `|"${mermaidText(label).replace(/\n/g, ' ')}"|` : ''} ${target}`,
    );
  }
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// SVG

type VizInstance = Awaited<ReturnType<(typeof import('@viz-js/viz'))['instance']>>;
let viz: Promise<VizInstance> | undefined;

/** Graphviz (WebAssembly) is loaded on first use and kept: about 2 MB, tens of milliseconds to start. */
function graphviz(): Promise<VizInstance> {
  viz ??= import('@viz-js/viz').then((m) => m.instance());
  return viz;
}

export async function dotToSvg(dot: string): Promise<string> {
  return (await graphviz()).renderString(dot, { format: 'svg', engine: 'dot' });
}

export async function toSvg(flow: FlowDefinition): Promise<string> {
  return dotToSvg(toDot(flow));
}

export type GraphFormat = 'svg' | 'dot' | 'mermaid';

export async function renderFlowGraph(flow: FlowDefinition, format: GraphFormat): Promise<string> {
  switch (format) {
    case 'svg':
      return toSvg(flow);
    case 'dot':
      return toDot(flow);
    case 'mermaid':
      return toMermaid(flow);
  }
}
