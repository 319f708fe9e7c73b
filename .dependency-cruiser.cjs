/**
 * Imports run one way (issue #19, /work/shared/STYLE.md "Imports run one way"): a folder under src/
 * may import only the folders below it in LAYERS, never one above; since the order is total, module
 * folders cannot form a cycle either. `npm run lint` checks it.
 */

/** Low to high. Each entry is a folder of src/ ('app' stands for the files at src/'s top). */
const LAYERS = [
  'common', // helpers with no domain
  'config', // RunnerConfig
  'core', // ground: envelope, subjects, TenantCtx, MessageCtx, seam interfaces, errors
  'tenancy',
  'sessions',
  'secrets',
  'wasm',
  'flows',
  'packs',
  'ratelimit',
  'messaging',
  'scheduling',
  'telemetry', // wraps the seams of the layers below where they are provided
  'health',
  'admin',
  'app', // app.module.ts, bootstrap.ts
  'cli', // the CLIs; src/main.ts (the process entry, `greentic-runner start`) is not layered
];

const folder = (layer) => (layer === 'app' ? '^src/(app\\.module|bootstrap)\\.ts$' : `^src/${layer}/`);

const layerRules = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer}`,
  comment: `src/${layer === 'app' ? '{app.module,bootstrap}.ts' : layer} sits below ${LAYERS.slice(i + 1).join(', ')} and may not import them`,
  severity: 'error',
  from: { path: folder(layer) },
  to: { path: LAYERS.slice(i + 1).map(folder) },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'layer-unlisted',
      comment: 'every folder of src/ takes a place in LAYERS, so the rule covers it',
      severity: 'error',
      from: { path: '^src/[^/]+/', pathNot: LAYERS.filter((l) => l !== 'app').map(folder) },
      to: { path: '^src/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
