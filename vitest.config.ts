import swc from 'unplugin-swc';
import { configDefaults, defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/**
 * Files that run after the others, one at a time: they assert a latency or a lease timing within
 * a few hundred ms, or load the CPU with replica processes, so a neighbour's CPU use would make
 * them fail (or make the neighbour fail).
 */
const ALONE = [
  'src/wasm/pool/pooled-component.runtime.spec.ts',
  'test/components.e2e-spec.ts',
  'test/partition-owners.e2e-spec.ts',
];

/**
 * Everything else runs 3 files at a time. Most e2e files wait (lease TTLs, timeouts, killed
 * processes) far more than they compute, and each uses its own NATS streams, Redis key prefix,
 * ports and temp dirs, or servers of its own (see test/support/nats-redis-servers.ts).
 */
const PARALLEL_WORKERS = 3;

function project(
  name: string,
  include: string[],
  test: TestProjectInlineConfiguration['test'],
): TestProjectInlineConfiguration {
  return {
    // SWC (not esbuild) so that Nest's constructor injection keeps its decorator metadata.
    plugins: [
      swc.vite({
        module: { type: 'es6' },
        jsc: {
          target: 'es2022',
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
        },
      }),
    ],
    test: {
      name,
      include,
      environment: 'node',
      pool: 'forks',
      testTimeout: 60_000,
      hookTimeout: 180_000,
      // jco's transpiled output (hundreds of KB per JS component) is plain ESM: load it natively.
      server: { deps: { external: [/\.cache\/greentic\//] } },
      ...test,
    },
  };
}

export default defineConfig({
  test: {
    projects: [
      project(
        'parallel',
        [
          'src/**/*.spec.ts',
          'sdk/**/*.spec.ts',
          'test/**/*.e2e-spec.ts',
          'test/**/*.spec.ts',
          'examples/**/*.spec.ts',
        ],
        { exclude: [...configDefaults.exclude, ...ALONE], maxWorkers: PARALLEL_WORKERS },
      ),
      // maxWorkers 1 with the default group order: Vitest runs this group after the others.
      project('alone', ALONE, { maxWorkers: 1 }),
    ],
    // Once, before any project: builds the WebAssembly fixtures.
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default'],
  },
});
