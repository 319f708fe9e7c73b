import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC (not esbuild) so that Nest's constructor injection keeps its decorator metadata.
export default defineConfig({
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
    include: [
      'src/**/*.spec.ts',
      'sdk/**/*.spec.ts',
      'test/**/*.e2e-spec.ts',
      'test/**/*.spec.ts',
      'examples/**/*.spec.ts',
    ],
    environment: 'node',
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 180_000,
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default'],
    // jco's transpiled output (hundreds of KB per JS component) is plain ESM: load it natively.
    server: { deps: { external: [/\.cache\/greentic\//] } },
  },
});
