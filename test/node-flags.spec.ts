import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The runner's Node flags live in two places a deployment reads: `npm start` and the Docker
 * image's NODE_OPTIONS (the benchmarks take them from `npm start`, bench/lib/harness.mjs). They
 * must say the same, and Node must accept them (a misspelt flag stops the process at start).
 */
const root = path.resolve(import.meta.dirname, '..');

function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  return pkg.scripts.start.split(/\s+/).filter((a) => a.startsWith('--'));
}

function imageFlags(): string[] {
  const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
  const m = /NODE_OPTIONS=("([^"]*)"|\S+)/.exec(runtime);
  expect(m, 'NODE_OPTIONS in the runtime stage of the Dockerfile').not.toBeNull();
  return (m![2] ?? m![1]!).split(/\s+/).filter(Boolean);
}

describe('Node flags of a deployed runner', () => {
  it('are the same for `npm start` and the Docker image', () => {
    expect(startFlags().length).toBeGreaterThan(0);
    expect(imageFlags()).toEqual(startFlags());
  });

  it('are accepted by the Node that runs the runner', () => {
    const out = execFileSync(process.execPath, [...startFlags(), '-e', 'process.stdout.write("ok")'], {
      encoding: 'utf8',
    });
    expect(out).toBe('ok');
  });
});
