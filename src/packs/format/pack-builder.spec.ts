import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlowValidationError, PackError } from '../../common/errors.js';
import {
  WORLD_V01,
  WORLD_V06,
  type ComponentSpec,
  type PreparedComponent,
} from '../../core/component-runtime.js';
import { buildPackFromDir } from './pack-builder.js';

/** What the runner's runtime would say of each component, without compiling one. */
function describer(
  worlds: Record<string, { world: PreparedComponent['world']; operations: readonly string[] }>,
) {
  return async (spec: ComponentSpec): Promise<PreparedComponent> => {
    const w = worlds[spec.name];
    if (!w) throw new Error(`component '${spec.name}' implements neither world`);
    return {
      name: spec.name,
      version: spec.version,
      digest: 'd'.repeat(64),
      world: w.world,
      exports: [],
      operations: w.operations.map((name) => ({ name })),
    };
  };
}

function packDir(flowNode: string, componentWorld?: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-builder-spec-'));
  mkdirSync(path.join(dir, 'flows'));
  writeFileSync(path.join(dir, 'calc.wasm'), 'not compiled here: the describer is a fake');
  writeFileSync(
    path.join(dir, 'flows', 'main.ygtc'),
    `id: main\ntype: messaging\nnodes:\n  step:\n    ${flowNode}\n    routing: reply\n`,
  );
  writeFileSync(
    path.join(dir, 'pack.yaml'),
    `id: p\nversion: 1.0.0\nflows: [flows/main.ygtc]\ncomponents:\n  - { name: calc, path: calc.wasm${componentWorld ? `, world: '${componentWorld}'` : ''} }\n`,
  );
  return dir;
}

const CALC = { calc: { world: WORLD_V06, operations: ['sum', 'echo'] } } as const;

async function refusal(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the build to be refused');
}

describe('buildPackFromDir with describe', () => {
  it('refuses an operation the component does not declare, in either node form', async () => {
    for (const node of ['calc.computee: {}', 'component.exec: { component: calc, operation: computee }']) {
      const e = await refusal(buildPackFromDir(packDir(node), { describe: describer(CALC) }));
      expect(e).toBeInstanceOf(FlowValidationError);
      expect(e.message).toContain(
        "node 'step': component 'calc' has no operation 'computee' (it declares: sum, echo)",
      );
    }
  });

  it('records each component world and operations in the manifest', async () => {
    const r = await buildPackFromDir(packDir('calc.sum: {}'), { describe: describer(CALC) });
    expect(r.manifest.components).toEqual([
      expect.objectContaining({ name: 'calc', world: WORLD_V06, operations: ['sum', 'echo'] }),
    ]);
  });

  it('without describe checks names only and records no operations', async () => {
    const r = await buildPackFromDir(packDir('calc.computee: {}'));
    expect(r.manifest.components[0]).toMatchObject({ world: null, operations: null });
  });

  it('refuses a component that cannot be described, and a world pack.yaml contradicts', async () => {
    const bad = await refusal(buildPackFromDir(packDir('calc.sum: {}'), { describe: describer({}) }));
    expect(bad).toBeInstanceOf(PackError);
    expect((bad as PackError).code).toBe('pack_component_invalid');
    expect(bad.message).toContain(
      "component 'calc' (calc.wasm) cannot be loaded: component 'calc' implements neither",
    );

    const wrong = await refusal(
      buildPackFromDir(packDir('calc.sum: {}', '0.1'), { describe: describer(CALC) }),
    );
    expect((wrong as PackError).code).toBe('pack_component_world_mismatch');
    expect(wrong.message).toContain(
      `component 'calc' is declared as ${WORLD_V01} but implements ${WORLD_V06}`,
    );
  });
});
