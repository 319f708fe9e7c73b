/**
 * Where a component worker's code is. Built (dist/): the compiled `component.worker.js` next to
 * this file. From the TypeScript sources (vitest, the ts-loader): a small bootstrap that registers
 * module hooks compiling `.ts` on the fly (ts-worker-hooks.mjs), then imports the worker source.
 */
import type { WorkerOptions } from 'node:worker_threads';

export interface WorkerScript {
  filename: string | URL;
  options: Pick<WorkerOptions, 'eval'>;
  fromSources: boolean;
}

let cached: WorkerScript | undefined;

export function workerScript(): WorkerScript {
  if (cached) return cached;
  const here = import.meta.url;
  if (!here.endsWith('.ts')) {
    cached = { filename: new URL('./component.worker.js', here), options: {}, fromSources: false };
    return cached;
  }
  const hooks = new URL('./ts-worker-hooks.mjs', here).href;
  const entry = new URL('./component.worker.ts', here).href;
  const code = [
    `require('node:module').register(${JSON.stringify(hooks)});`,
    `import(${JSON.stringify(entry)}).catch((e) => {`,
    `  process.stderr.write('component worker failed to start: ' + (e && e.stack ? e.stack : e) + '\\n');`,
    '  process.exit(70);',
    '});',
  ].join('\n');
  cached = { filename: code, options: { eval: true }, fromSources: true };
  return cached;
}
