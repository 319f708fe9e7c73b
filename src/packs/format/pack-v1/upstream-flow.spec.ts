import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { checkFlowCalls, compileUpstreamFlow } from './upstream-flow.js';
import { isUpstreamPackYaml, openUpstreamPackDir, readSidecar } from './upstream-pack-yaml.js';

let dir: string;

function write(rel: string, text: string): string {
  const abs = path.join(dir, rel);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, text);
  return abs;
}

const PACK_YAML = `pack_id: t.pack
version: 0.1.0
kind: application
publisher: me
components:
  - id: comp
    version: 0.1.0
    world: greentic:component/component@0.6.0
    wasm: components/comp.wasm
flows:
  - id: main
    file: flows/main.ygtc
`;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'gt-upstream-flow-'));
  write('pack.yaml', PACK_YAML);
  write('components/comp.wasm', 'not really wasm');
});

describe('upstream pack.yaml detection', () => {
  it("tells upstream's layout from this runner's", () => {
    expect(isUpstreamPackYaml({ pack_id: 'x' })).toBe(true);
    expect(isUpstreamPackYaml({ id: 'x', flows: [{ id: 'a', file: 'flows/a.ygtc' }] })).toBe(true);
    expect(
      isUpstreamPackYaml({ id: 'x', flows: ['flows/a.ygtc'], components: [{ name: 'c', path: 'c.wasm' }] }),
    ).toBe(false);
    expect(isUpstreamPackYaml({ id: 'x', flows: [{ path: 'flows/a.ygtc' }] })).toBe(false);
  });

  it('reports a missing pack_id/version and a path leaving the pack at their line', async () => {
    write('pack.yaml', 'pack_id: t\nkind: gadget\nflows:\n  - id: a\n    file: ../outside.ygtc\n');
    const p = (await openUpstreamPackDir(dir))!;
    expect(p.issues.map((i) => `${i.line}:${i.column} ${i.message}`)).toEqual([
      "1:1 'version' is required (a string)",
      "2:7 kind 'gadget' is not one of application, provider, infrastructure, library",
      "5:11 flows[0].file '../outside.ygtc' leaves the pack directory",
    ]);
  });
});

describe('.ygtc.resolve.json', () => {
  it('refuses a wrong schema_version, an absolute local path, a malformed digest', async () => {
    const flow = write('flows/main.ygtc', 'id: main\ntype: messaging\nnodes: {}\n');
    write(
      'flows/main.ygtc.resolve.json',
      JSON.stringify({
        schema_version: 2,
        nodes: {
          a: { source: { kind: 'local', path: '/abs/comp.wasm' } },
          b: { source: { kind: 'local', path: '../components/comp.wasm', digest: 'md5:00' } },
          c: { source: { kind: 'ftp', ref: 'x' } },
          d: { source: { kind: 'oci', ref: 'oci://r/c@sha256:ab' } },
        },
      }),
    );
    const s = (await readSidecar(flow))!;
    expect(s.issues.map((i) => i.message)).toEqual([
      'schema_version must be 1 (is 2)',
      "node 'a': a local path must be relative (is '/abs/comp.wasm')",
      "node 'b': digest must be sha256:<hex>",
      "node 'c': source.kind must be one of local, oci, repo, store, ext",
    ]);
    expect(s.bindings).toMatchObject([{ node: 'd', kind: 'oci', ref: 'oci://r/c@sha256:ab' }]);
  });
});

describe('compileUpstreamFlow', () => {
  it("compiles upstream's demo shape: `- next:` warned and kept as Custom, the sidecar binding the node", async () => {
    write(
      'flows/main.ygtc',
      `id: main
type: messaging
start: call
nodes:
  call:
    component.exec: { component: "oci://example/comp:1", operation: go, message: "{{in.input}}" }
    routing:
      - next: done
  done:
    emit.response: { messages: [{ type: text, text: "ok" }] }
    routing:
      - out: true
`,
    );
    write(
      'flows/main.ygtc.resolve.json',
      JSON.stringify({
        schema_version: 1,
        flow: 'main.ygtc',
        nodes: {
          call: { source: { kind: 'local', path: '../components/comp.wasm', digest: 'sha256:1111' } },
        },
      }),
    );
    const pack = (await openUpstreamPackDir(dir))!;
    const r = await compileUpstreamFlow(pack.flows[0]!, pack);
    expect(r.issues.map((i) => `${path.basename(i.file)}:${i.line}:${i.column} ${i.code}`)).toEqual([
      'main.ygtc:8:9 route_next_alias',
      'main.ygtc.resolve.json:1:49 sidecar_digest_mismatch',
    ]);
    expect(r.issues.every((i) => i.severity === 'warning')).toBe(true);
    const call = r.flow!.nodes.find((n) => n.id === 'call')!;
    expect(call.component).toEqual({ id: 'comp', operation: 'go' });
    expect(call.routing).toEqual({ kind: 'custom', value: [{ next: 'done' }] });
    expect(r.flow!.nodes.find((n) => n.id === 'done')!.routing).toEqual({ kind: 'end' });
  });

  it('refuses two operation keys in a schema_version 2 flow and a start node that does not exist', async () => {
    write(
      'flows/main.ygtc',
      'id: main\ntype: messaging\nschema_version: 2\nstart: nope\nnodes:\n  a:\n    emit.response: {}\n    reply: {}\n',
    );
    const pack = (await openUpstreamPackDir(dir))!;
    const r = await compileUpstreamFlow(pack.flows[0]!, pack);
    expect(r.flow).toBeUndefined();
    expect(r.issues.map((i) => `${i.line}:${i.column} ${i.code}`)).toEqual([
      '8:5 multiple_operations',
      '4:8 unknown_start',
    ]);
  });

  it('a flow.call to a flow the pack does not have is an error at the calling node', async () => {
    write(
      'flows/main.ygtc',
      'id: main\ntype: messaging\nnodes:\n  start:\n    flow.call: { flow_id: helper }\n    routing: [{ to: other }]\n  other:\n    flow.call: { flow_id: main }\n',
    );
    const pack = (await openUpstreamPackDir(dir))!;
    const r = await compileUpstreamFlow(pack.flows[0]!, pack);
    expect(r.issues).toEqual([]);
    const calls = checkFlowCalls([{ flow: r.flow!, file: 'main.ygtc', nodeAt: r.nodeAt! }]);
    expect(calls.map((i) => `${i.line}:${i.column} ${i.message}`)).toEqual([
      "4:3 node 'start' of flow 'main' calls flow 'helper', which the pack does not have (pack flows: main)",
    ]);
  });
});
