import { describe, expect, it } from 'vitest';
import {
  customRouteEntries,
  effectiveComponentId,
  effectiveOperation,
  entryNode,
} from '../../../flows/flow-v1.js';
import { decodeManifestV1, encodeManifestV1 } from './manifest-v1.js';
import { encodeWire, jsonToWire, type WireMap, type WireValue } from './wire-cbor.js';

const m = (entries: [string, WireValue][]): WireMap => new Map(entries);

/**
 * The shape packc wrote for greentic-demo's quickstart-app (types 0.4.x: nodes without `err_map`, an
 * unresolved `component.exec` node, a `Custom` routing list with `next`), built field by field in upstream's
 * declaration order.
 */
function upstreamShaped(nodeId: WireValue = 1, lastRouting: WireValue = 'End'): Uint8Array {
  const node = (id: WireValue, comp: number, mapping: unknown, routing: WireValue): WireMap =>
    m([
      ['id', id],
      [
        'component',
        m([
          ['id', comp],
          ['pack_alias', null],
          ['operation', null],
        ]),
      ],
      ['input', m([['mapping', jsonToWire(mapping)]])],
      ['output', m([['mapping', m([])]])],
      ['routing', routing],
      ['telemetry', m([['attributes', m([])]])],
    ]);
  return encodeWire(
    m([
      ['schema_version', 'pack-v1'],
      ['pack_id', 0],
      ['version', '0.1.0'],
      ['kind', 'application'],
      ['publisher', 'Someone'],
      [
        'symbols',
        m([
          ['component_ids', ['component.exec', 'emit.response']],
          [
            'node_ids',
            ['echo_result', 'extract_event', ...(lastRouting === 'End' ? [] : ['in_another_flow'])],
          ],
          ['capability_names', ['wasi:fs:none']],
          ['pack_ids', ['greentic.quickstart-app']],
        ]),
      ],
      ['components', []],
      [
        'flows',
        [
          m([
            ['id', 'on_message'],
            ['kind', 'messaging'],
            [
              'flow',
              m([
                ['schema_version', 'flow-v1'],
                ['id', 'on_message'],
                ['kind', 'messaging'],
                ['entrypoints', m([['default', 'extract_event']])],
                [
                  'nodes',
                  [
                    node(
                      nodeId,
                      0,
                      { component: 'component-msg2events', operation: 'extract', message: '{{in.input}}' },
                      m([['Custom', jsonToWire([{ next: 'echo_result' }])]]),
                    ),
                    node(
                      0,
                      1,
                      { messages: [{ type: 'text', text: 'Received: {{in.input.text}}' }] },
                      lastRouting,
                    ),
                  ],
                ],
                [
                  'metadata',
                  m([
                    ['title', 'Message to Event Demo'],
                    ['tags', []],
                    ['extra', m([])],
                  ]),
                ],
              ]),
            ],
            ['tags', ['default']],
            ['entrypoints', ['default']],
          ]),
        ],
      ],
      ['dependencies', []],
      [
        'capabilities',
        [
          m([
            ['name', 0],
            ['description', null],
          ]),
        ],
      ],
      ['signatures', m([['signatures', []]])],
    ]),
  );
}

describe('pack-v1 manifest', () => {
  it('decodes an upstream-shaped manifest into flow-v1 and re-encodes it byte for byte', () => {
    const bytes = upstreamShaped();
    const man = decodeManifestV1(bytes, 'up.gtpack');
    expect(man.pack_id).toBe('greentic.quickstart-app');
    expect(man.capabilities).toEqual([{ name: 'wasi:fs:none', description: null }]);
    const flow = man.flows[0]!.flow;
    expect(flow.metadata.title).toBe('Message to Event Demo');
    const [first, second] = flow.nodes;
    expect(first!.id).toBe('extract_event');
    expect(entryNode(flow)).toBe(first);
    expect(effectiveComponentId(first!)).toBe('component-msg2events');
    expect(effectiveOperation(first!)).toBe('extract');
    expect(first!.err_map).toBeUndefined();
    expect(first!.routing).toEqual({ kind: 'custom', value: [{ next: 'echo_result' }] });
    expect(customRouteEntries([{ next: 'echo_result' }])).toEqual([
      { to: 'echo_result', out: false, reply: false },
    ]);
    expect(second!.component).toEqual({ id: 'emit.response' });
    expect(second!.routing).toEqual({ kind: 'end' });
    expect(man.wire).toEqual({ nodeErrMap: false });
    expect(Buffer.from(encodeManifestV1(man)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('refuses a symbol index out of range, naming the table', () => {
    expect(() => decodeManifestV1(upstreamShaped(7), 'up.gtpack')).toThrow(
      expect.objectContaining({
        code: 'pack_manifest_symbol_invalid',
        message: expect.stringMatching(/invalid symbol index 7 in node_ids/),
      }),
    );
  });

  it('refuses an id that breaks upstream identifier rule, and a routing target outside the flow', () => {
    const bad = Buffer.from(upstreamShaped())
      .toString('latin1')
      .replace('greentic.quickstart-app', 'greentic/quickstart-app');
    expect(() => decodeManifestV1(new Uint8Array(Buffer.from(bad, 'latin1')), 'up')).toThrow(
      /not a valid identifier/,
    );
    const elsewhere = upstreamShaped(1, m([['Next', m([['node_id', 2]])]]));
    expect(() => decodeManifestV1(elsewhere, 'up')).toThrow(
      /routes to 'in_another_flow', which is not a node of flow 'on_message'/,
    );
  });
});
