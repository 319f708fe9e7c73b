/**
 * The bundle step of a JavaScript/TypeScript component build: rolldown resolves the component's
 * own modules and `@greentic/component-sdk` (this repository's sdk/component, TypeScript) into
 * one ES module for componentize-js, leaving the WIT imports (`greentic:host/state@0.1.0`, ...)
 * external. The modules it read, hashed, are the build's cache key inputs.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256Hex } from '../cache-utils.js';

/** The SDK package (src/wasm/authoring and dist/wasm/authoring are both 3 levels down). */
export const SDK_DIR = resolve(fileURLToPath(new URL('../../../sdk/component', import.meta.url)));

interface SdkManifest {
  name: string;
  version: string;
  exports: Record<string, string>;
}

let sdk: SdkManifest | undefined;
function sdkManifest(): SdkManifest {
  sdk ??= JSON.parse(readFileSync(join(SDK_DIR, 'package.json'), 'utf8')) as SdkManifest;
  return sdk;
}

export function sdkVersion(): string {
  return sdkManifest().version;
}

/** `greentic:host/state@0.1.0`, `wasi:cli/environment@0.2.3`: WIT imports componentize-js binds. */
const WIT_IMPORT = /^[a-z][a-z0-9-]*:[a-z0-9-]+\//;

export interface ComponentBundle {
  /** One ES module, WIT imports left as imports. */
  code: string;
  /** Every module the bundle read: `[label, sha256]`, labels relative to the source's folder or `sdk:`. */
  inputs: Array<[string, string]>;
}

/** Bundles `sourcePath` (JS or TS) and what it imports, the SDK included. */
export async function bundleComponent(sourcePath: string): Promise<ComponentBundle> {
  const entry = resolve(sourcePath);
  const { name, exports } = sdkManifest();
  const sdkEntries = new Map(
    Object.entries(exports).map(([sub, file]) => [
      sub === '.' ? name : `${name}/${sub.slice(2)}`,
      join(SDK_DIR, file),
    ]),
  );
  const { rolldown } = await import('rolldown');
  const bundle = await rolldown({
    input: entry,
    platform: 'neutral',
    // The SDK is resolved by the plugin below; a tsconfig found above the project (a repository's)
    // would otherwise become a build input and change the transform.
    tsconfig: false,
    external: (id) => WIT_IMPORT.test(id),
    logLevel: 'warn',
    onLog(level, log) {
      if (level === 'warn') throw new Error(`bundling ${sourcePath}: ${log.message}`);
    },
    plugins: [
      {
        name: 'greentic-component-sdk',
        resolveId(id: string) {
          const file = sdkEntries.get(id);
          if (file) return file;
          if (id === name || id.startsWith(`${name}/`)) {
            throw new Error(`'${id}' is not part of ${name} (it has: ${[...sdkEntries.keys()].join(', ')})`);
          }
          return null;
        },
      },
    ],
  });
  try {
    // No comments: rolldown's region comments name paths relative to the cwd.
    const { output } = await bundle.generate({ format: 'esm', comments: false });
    const code = output[0].code;
    const base = resolve(entry, '..');
    const inputs = await Promise.all((await bundle.watchFiles).map((f) => label(f, base)));
    return { code, inputs: inputs.sort((a, b) => a[0].localeCompare(b[0])) };
  } finally {
    await bundle.close();
  }
}

async function label(file: string, base: string): Promise<[string, string]> {
  const inSdk = !relative(SDK_DIR, file).startsWith('..');
  const name = inSdk ? `sdk:${relative(SDK_DIR, file)}` : relative(base, file);
  return [name, sha256Hex(await readFile(file))];
}
