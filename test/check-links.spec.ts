import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script (run by `npm run lint`), without type declarations
import { checkFile } from '../scripts/check-links.mjs';

const check = checkFile as (file: string) => string[];

describe('scripts/check-links.mjs', () => {
  it('reports missing files, missing anchors and pages named in prose that do not exist', () => {
    // Under the repository, as the pages it checks are: names resolve next to the page or at the root.
    mkdirSync(path.resolve('test/artifacts'), { recursive: true });
    const dir = mkdtempSync(path.resolve('test/artifacts/links-'));
    writeFileSync(path.join(dir, 'b.md'), '# Title\n\n## `qa.process`: asking questions\n');
    const a = path.join(dir, 'a.md');
    writeFileSync(
      a,
      [
        '# A',
        'Good: [b](b.md), [anchor](b.md#qaprocess-asking-questions), [self](#a), [web](https://example.com/x.md).',
        'Bad: [gone](gone.md) and [anchor](b.md#nope), see GHOST.md §1.',
        '```',
        '[in code](nowhere.md) GHOST2.md',
        '```',
        'Inline `[code](nowhere.md)` is an example too.',
      ].join('\n'),
    );
    const problems = check(a).map((p) => p.replace(/^.*a\.md:/, 'a.md:'));
    expect(problems).toEqual([
      expect.stringMatching(/^a\.md:3: link to 'gone\.md': .*gone\.md does not exist$/),
      expect.stringMatching(/^a\.md:3: link to 'b\.md#nope': no heading '#nope' in .*b\.md$/),
      "a.md:3: names 'GHOST.md', which is not in the repository",
    ]);
  });
});
