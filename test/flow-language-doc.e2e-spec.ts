import 'reflect-metadata';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/greentic-runner/cli.js';
import { BUNDLE_JSON_SCHEMA } from '../src/cli/greentic-flow/json-schemas.js';
import { checkFlow } from '../src/flows/flow-validator.js';
import { YGTC_FLOW_SCHEMA } from '../src/flows/ygtc.schema.js';

/**
 * docs/flow-language.md cannot rot: every ```yaml block in it is checked here.
 *   - a flow (it has `nodes:`) validates with no error and no warning, and the published JSON
 *     Schema (node bodies included) accepts it; a block starting `# invalid` must have errors;
 *   - a conversation script (it has `turns:`) runs with `greentic-runner test` against a pack of
 *     the flows written since the previous script, the components it mocks declared in it;
 *   - a bundle (it has `tenants:`) is accepted by the bundle JSON Schema.
 */

const DOC = path.resolve('docs/flow-language.md');

interface Block {
  line: number;
  text: string;
}

function yamlBlocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```yaml') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    out.push({ line: start + 1, text: lines.slice(start, end).join('\n') + '\n' });
    i = end;
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const blocks = yamlBlocks(readFileSync(DOC, 'utf8'));

const ajvFlow = new Ajv2020({ allErrors: true, allowUnionTypes: true, strict: true });
ajvFlow.addKeyword({ keyword: 'x-message', schemaType: 'string' });
const editorSchema = ajvFlow.compile(YGTC_FLOW_SCHEMA);
const bundleSchema = new Ajv({ allErrors: true, strict: false }).compile(BUNDLE_JSON_SCHEMA);

interface Example {
  flows: Block[];
  script: Block;
  components: string[];
}

const flows: Block[] = [];
const invalid: Block[] = [];
const bundles: Block[] = [];
const examples: Example[] = [];
let pending: Block[] = [];
for (const b of blocks) {
  const doc: unknown = parseYaml(b.text);
  if (!isRecord(doc)) throw new Error(`${DOC}:${b.line}: a yaml block that is not a mapping`);
  if (doc['turns'] !== undefined) {
    const mocks = isRecord(doc['mocks']) ? Object.keys(doc['mocks']) : [];
    examples.push({ flows: pending, script: b, components: mocks });
    pending = [];
  } else if (doc['nodes'] !== undefined) {
    if (b.text.startsWith('# invalid')) invalid.push(b);
    else {
      flows.push(b);
      pending.push(b);
    }
  } else if (doc['tenants'] !== undefined) {
    bundles.push(b);
  } else {
    throw new Error(`${DOC}:${b.line}: a yaml block that is neither a flow, a script nor a bundle`);
  }
}

describe('docs/flow-language.md', () => {
  it('has examples of every kind', () => {
    expect(flows.length).toBeGreaterThanOrEqual(10);
    expect(examples.length).toBeGreaterThanOrEqual(8);
    expect(invalid.length).toBeGreaterThanOrEqual(1);
    expect(bundles.length).toBeGreaterThanOrEqual(1);
  });

  it.each(flows.map((b) => [b.line, b] as const))(
    'the flow at line %i validates, also against the published JSON Schema',
    (line, b) => {
      const issues = checkFlow(b.text, `flow-language.md:${line}`).issues;
      expect(issues.map((i) => `${i.line}:${i.column} ${i.severity} ${i.message}`)).toEqual([]);
      const ok = editorSchema(parseYaml(b.text));
      expect(ok ? [] : editorSchema.errors).toEqual([]);
    },
  );

  it.each(invalid.map((b) => [b.line, b] as const))(
    'the counter-example at line %i is reported',
    (line, b) => {
      const errors = checkFlow(b.text, `flow-language.md:${line}`).issues.filter(
        (i) => i.severity === 'error',
      );
      expect(errors.length).toBeGreaterThan(0);
    },
  );

  it.each(bundles.map((b) => [b.line, b] as const))(
    'the bundle at line %i matches the bundle JSON Schema',
    (_line, b) => {
      const ok = bundleSchema(parseYaml(b.text));
      expect(ok ? [] : bundleSchema.errors).toEqual([]);
    },
  );

  it.each(examples.map((e) => [e.script.line, e] as const))(
    'the conversation at line %i runs as written with greentic-runner test',
    async (line, e) => {
      expect(e.flows.length, `no flow before the script at line ${line}`).toBeGreaterThan(0);
      const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-doc-'));
      mkdirSync(path.join(dir, 'flows'));
      const flowFiles = e.flows.map((f, i) => {
        const rel = `flows/f${i}.ygtc`;
        writeFileSync(path.join(dir, rel), f.text);
        return rel;
      });
      // Mocked components are declared; their wasm is never read.
      const components = e.components.map((name) => `  - { name: ${name}, path: components/${name}.wasm }`);
      writeFileSync(
        path.join(dir, 'pack.yaml'),
        [
          'id: doc-example',
          'version: 0.1.0',
          `flows: [${flowFiles.join(', ')}]`,
          ...(components.length ? ['components:', ...components] : []),
          '',
        ].join('\n'),
      );
      const script = path.join(dir, 'script.yaml');
      writeFileSync(script, e.script.text);
      const out: string[] = [];
      const code = await runCli(['test', dir, script], {
        io: { out: (l) => out.push(l), err: (l) => out.push(`err: ${l}`) },
      });
      expect(code, out.join('\n')).toBe(0);
      expect(out.filter((l) => l.startsWith('err:'))).toEqual([]);
    },
  );
});
