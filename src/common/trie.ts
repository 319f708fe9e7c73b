/** A tree of maps, one level per key part. */
export type Trie = Map<unknown, unknown>;

/** The child of `node` at `part`, made empty the first time. */
export function branch(node: Trie, part: unknown): Trie {
  let next = node.get(part) as Trie | undefined;
  if (!next) node.set(part, (next = new Map()));
  return next;
}
