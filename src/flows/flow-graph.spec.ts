import { XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { flowGraph, toDot, toMermaid, toSvg } from './flow-graph.js';
import { parseFlow } from './ygtc-loader.js';

const y = (...lines: string[]): string => lines.join('\n') + '\n';

function flow(text: string) {
  const { flow: f, issues } = parseFlow(text, 'g.ygtc');
  if (!f) throw new Error(issues.map((i) => i.message).join('\n'));
  return f;
}

const TRICKY = flow(
  y(
    'id: tricky',
    'type: messaging',
    'title: Quotes "and" <brackets>',
    'nodes:',
    '  end:',
    '    qa.process: { questions: [{ id: q, prompt: "?" }] }',
    '    routing:',
    '      - { to: graph, condition: "in.q == \\"a<b\\" && in.q != \'x\'" }',
    '      - { reply: true }',
    '  graph:',
    '    weather.forecast: { q: in.q }',
    '    when: { condition: in.q != "" }',
  ),
);

describe('flow graphs', () => {
  it('models nodes, targets, conditions and ends', () => {
    const g = flowGraph(TRICKY);
    expect(g.nodes).toEqual([
      { id: 'end', operation: 'qa.process', kind: 'question', start: true },
      {
        id: 'graph',
        operation: 'weather.forecast',
        kind: 'component',
        target: 'weather.forecast',
        when: 'in.q != ""',
        start: false,
      },
    ]);
    expect(g.edges).toEqual([
      { from: 'end', to: 'graph', condition: 'in.q == "a<b" && in.q != \'x\'', rule: 1 },
      { from: 'end', end: 'reply', rule: 2 },
      { from: 'graph', end: 'out', rule: 0 },
    ]);
  });

  it('escapes quotes in DOT and keeps node names that are Mermaid keywords out of its syntax', () => {
    const dot = toDot(TRICKY);
    expect(dot).toContain('"end" -> "graph" [label="in.q == \\"a<b\\" && in.q != \'x\'"];');
    expect(dot).toContain('graph [label="Quotes \\"and\\" <brackets> (tricky)"');
    const mermaid = toMermaid(TRICKY);
    expect(mermaid).toContain('n0(["end<br/>qa.process"])');
    expect(mermaid).toContain('n0 -->|"in.q == #quot;a#lt;b#quot; #amp;#amp; in.q != \'x\'"| n1');
    expect(mermaid).not.toMatch(/^\s+end\b/m);
  });

  it('renders SVG that is well-formed XML even with markup characters in labels', async () => {
    const svg = await toSvg(TRICKY);
    expect(XMLValidator.validate(svg)).toBe(true);
    expect(svg).toContain('<title>end</title>');
    expect(svg).toContain('<title>graph</title>');
  });
});
