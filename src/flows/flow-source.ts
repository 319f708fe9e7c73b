import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter } from 'yaml';
import type { FlowDefinition, SourceLoc } from './flow.types.js';

/** The parsed YAML behind a FlowDefinition, so later checks can point at any key or value. */
export interface FlowSource {
  file: string;
  doc: Document;
  lineCounter: LineCounter;
}

const SOURCES = new WeakMap<FlowDefinition, FlowSource>();

export function attachSource(flow: FlowDefinition, source: FlowSource): void {
  SOURCES.set(flow, source);
}

export function sourceOf(flow: FlowDefinition): FlowSource | undefined {
  return SOURCES.get(flow);
}

export type PathSegment = string | number;

interface Found {
  /** Key (map entry) or item (list entry) node of the deepest segment found. */
  key?: { range?: readonly number[] | null } | null;
  value?: { range?: readonly number[] | null } | null;
  complete: boolean;
}

function keyText(k: unknown): string {
  return isScalar(k) ? String(k.value) : String(k);
}

function walk(doc: Document, path: readonly PathSegment[]): Found {
  let cur: unknown = doc.contents;
  let found: Found = { value: doc.contents as Found['value'], complete: true };
  for (const seg of path) {
    if (isMap(cur)) {
      const pair = cur.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
      if (!pair) return { ...found, complete: false };
      found = { key: pair.key as Found['key'], value: pair.value as Found['value'], complete: true };
      cur = pair.value;
    } else if (isSeq(cur)) {
      const item = cur.items[Number(seg)];
      if (item === undefined) return { ...found, complete: false };
      found = { key: item as Found['key'], value: item as Found['value'], complete: true };
      cur = item;
    } else {
      return { ...found, complete: false };
    }
  }
  return found;
}

export function posOf(source: FlowSource, offset: number): SourceLoc {
  const p = source.lineCounter.linePos(offset);
  return { file: source.file, line: p.line, column: p.col };
}

/**
 * 1-based position of the key (`at: 'key'`) or the value (`at: 'value'`) at `path`; the nearest
 * existing ancestor when the path does not exist, the document start for the root.
 */
export function locate(
  source: FlowSource,
  path: readonly PathSegment[],
  at: 'key' | 'value' = 'key',
): SourceLoc {
  const f = walk(source.doc, path);
  const first = at === 'value' && f.complete ? f.value : f.key;
  const node = first?.range ? first : f.key?.range ? f.key : f.value;
  const offset = node?.range?.[0] ?? firstContentOffset(source);
  return posOf(source, offset);
}

function firstContentOffset(source: FlowSource): number {
  const c = source.doc.contents as { range?: readonly number[] } | null;
  return c?.range?.[0] ?? 0;
}

/** Locates in a flow's own source; falls back to the node's (or the file's) position. */
export function locateInFlow(
  flow: FlowDefinition,
  path: readonly PathSegment[],
  at: 'key' | 'value' = 'key',
): SourceLoc {
  const src = sourceOf(flow);
  if (src) return locate(src, path, at);
  const nodeId = path[0] === 'nodes' ? path[1] : undefined;
  const node = typeof nodeId === 'string' ? flow.nodes.get(nodeId) : undefined;
  return node?.loc ?? { file: flow.file, line: 1, column: 1 };
}
