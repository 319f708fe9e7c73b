import { readFile } from 'node:fs/promises';
import type { FlowIssue } from '../../flows/flow.types.js';
import { checkFlowCalls, compileUpstreamFlow } from '../../packs/format/pack-v1/upstream-flow.js';
import type { UpstreamPackYaml } from '../../packs/format/pack-v1/upstream-pack-yaml.js';
import type { DescribeComponent } from '../greentic-pack/describe-components.js';

/** A flow file of the pack and the id it declared, for the per-file report. */
export interface UpstreamFlowFile {
  file: string;
  flow?: string;
}

/**
 * `greentic-flow validate` of a directory in upstream's `pack.yaml` layout: the pack.yaml itself, then each
 * flow it lists (`flows[].file`) the way `greentic-pack build` compiles it, sidecar included. With
 * `describe`, each component that is built is described so calls to undeclared operations are reported.
 */
export async function validateUpstreamPack(
  pack: UpstreamPackYaml,
  describe?: DescribeComponent,
): Promise<{ files: UpstreamFlowFile[]; issues: FlowIssue[] }> {
  const issues: FlowIssue[] = [...pack.issues];
  const operations = new Map<string, string[]>();
  for (const c of pack.components) {
    const warn = (message: string): void => {
      issues.push({
        severity: 'warning',
        code: 'component_not_described',
        message: `operations of component '${c.id}' not checked: ${message}`,
        file: pack.file,
        ...c.pos,
      });
    };
    if (!c.wasmFile) {
      warn(`${c.wasm}: no such file (build the component first)`);
      continue;
    }
    if (!describe) continue;
    try {
      const pc = await describe({
        name: c.id,
        version: c.version,
        bytes: new Uint8Array(await readFile(c.wasmFile)),
      });
      operations.set(
        c.id,
        pc.operations.map((o) => o.name),
      );
    } catch (e) {
      warn(`${c.wasm}: ${(e as Error).message}`);
    }
  }
  if (pack.flows.length === 0)
    issues.push({
      severity: 'warning',
      code: 'no_flows',
      message: 'pack.yaml lists no flows (flows: [{id, file}])',
      file: pack.file,
      line: 1,
      column: 1,
    });
  const files: UpstreamFlowFile[] = [];
  const ids = new Map<string, string>();
  const compiled: Parameters<typeof checkFlowCalls>[0][number][] = [];
  for (const ref of pack.flows) {
    const r = await compileUpstreamFlow(ref, pack, { operations });
    issues.push(...r.issues);
    files.push({ file: ref.abs, ...(r.flow ? { flow: r.flow.id } : {}) });
    if (!r.flow) continue;
    const other = ids.get(r.flow.id);
    if (other !== undefined)
      issues.push({
        severity: 'error',
        code: 'flow_duplicate',
        message: `flow id '${r.flow.id}' is also defined in ${other}`,
        file: ref.abs,
        line: 1,
        column: 1,
      });
    else ids.set(r.flow.id, ref.file);
    compiled.push({ flow: r.flow, file: ref.abs, nodeAt: r.nodeAt! });
  }
  issues.push(...checkFlowCalls(compiled));
  return { files, issues };
}
