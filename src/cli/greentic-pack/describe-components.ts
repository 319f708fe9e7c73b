import { Logger } from '@nestjs/common';
import type { ComponentSpec, PreparedComponent } from '../../core/component-runtime.js';
import { JcoComponentRuntime } from '../../wasm/jco-component.runtime.js';

/** What a build or a validation needs of a component: its world and declared operations. */
export type DescribeComponent = (spec: ComponentSpec) => Promise<PreparedComponent>;

/**
 * Runs `fn` with a describer backed by the runner's own component runtime (transpile, world
 * detection, 0.6 `describe()` in a scratch instance), so build time sees a component exactly as
 * the runner will at load. The runtime is closed afterwards; the transpile cache stays on disk.
 */
export async function withComponentDescriber<T>(fn: (describe: DescribeComponent) => Promise<T>): Promise<T> {
  // The runtime logs each prepared component at 'log' level on stdout; a CLI's stdout is its answer.
  Logger.overrideLogger(['error', 'fatal']);
  const runtime = new JcoComponentRuntime();
  try {
    return await fn((spec) => runtime.prepare(spec));
  } finally {
    await runtime.close();
  }
}
