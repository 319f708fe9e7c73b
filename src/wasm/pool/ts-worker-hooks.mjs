// Module hooks for component workers started from the TypeScript sources (vitest, `node --import
// test/support/ts-loader.mjs`): `.js` imports that name a `.ts` file resolve to it, and `.ts` files
// are compiled by SWC. Outputs are cached on disk by content hash, because every worker thread
// has its own loader and the memory-cap tests start dozens of workers. Production runs dist/ and
// never loads this file.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cacheDir = join(
  process.env.GREENTIC_TS_WORKER_CACHE ?? join(process.cwd(), '.cache', 'greentic'),
  'ts-workers',
);
let swc;

export async function resolve(specifier, context, next) {
  if (
    specifier.endsWith('.js') &&
    context.parentURL?.startsWith('file:') &&
    context.parentURL.endsWith('.ts') &&
    (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:'))
  ) {
    const url = new URL(specifier, context.parentURL);
    if (!existsSync(fileURLToPath(url))) {
      const ts = new URL(url.href.slice(0, -3) + '.ts');
      if (existsSync(fileURLToPath(ts))) return { url: ts.href, format: 'module', shortCircuit: true };
    }
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const filename = fileURLToPath(url);
  const source = readFileSync(filename, 'utf8');
  const key = createHash('sha256')
    .update('swc-es2022-1\n')
    .update(filename)
    .update('\n')
    .update(source)
    .digest('hex');
  const cached = join(cacheDir, `${key}.js`);
  if (existsSync(cached))
    return { format: 'module', source: readFileSync(cached, 'utf8'), shortCircuit: true };
  swc ??= await import('@swc/core');
  const { code } = swc.transformSync(source, {
    filename,
    sourceMaps: 'inline',
    module: { type: 'es6' },
    jsc: {
      target: 'es2022',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
    },
  });
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, code);
  renameSync(tmp, cached);
  return { format: 'module', source: code, shortCircuit: true };
}
