#!/usr/bin/env node
// `npm run bench [-- name...]`: builds once, then runs bench/<name>/run.mjs for each name
// (all benchmarks when none is given). Each prints a table and writes bench/results/<name>.json.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const all = readdirSync(path.join(root, 'bench'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(path.join(root, 'bench', d.name, 'run.mjs')))
  .map((d) => d.name)
  .sort();
const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const n of names) {
  if (!all.includes(n)) {
    process.stderr.write(`unknown benchmark '${n}' (have: ${all.join(', ')})\n`);
    process.exit(2);
  }
}
execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
for (const n of names.length > 0 ? names : all) {
  process.stdout.write(`\n=== bench/${n} ===\n`);
  execFileSync(
    process.execPath,
    [path.join(root, 'bench', n, 'run.mjs'), ...process.argv.slice(2).filter((a) => a.startsWith('-'))],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
}
