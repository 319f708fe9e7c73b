import { planFor } from './flow-plan.js';
import type { FlowDefinition, FlowIssue } from './flow.types.js';
import { isBuiltinComponentId } from './flow-v1.js';

/**
 * Load-time checks of a flow imported from a pack-v1 manifest, against the pack's components: every
 * component node calls a component the pack carries, and every mapping and condition compiles.
 * (Operations are not checked against `describe()`: upstream's card packs call `run` on a component
 * that describes `card`, and the component accepts it.)
 */
export function checkFlowV1(flow: FlowDefinition, components: { has(name: string): boolean }): FlowIssue[] {
  const issues: FlowIssue[] = [];
  const at = { file: flow.file, line: 1, column: 1 };
  for (const node of flow.nodes.values()) {
    const id = node.call?.component;
    if (id === undefined || isBuiltinComponentId(id) || components.has(id)) continue;
    issues.push({
      severity: 'error',
      code: 'unknown_component',
      message: `flow '${flow.id}': node '${node.id}' calls component '${id}', which the pack does not carry`,
      ...at,
    });
  }
  for (const p of planFor(flow).problems) {
    issues.push({ severity: 'error', code: p.code, message: `flow '${flow.id}': ${p.message}`, ...at });
  }
  return issues;
}
