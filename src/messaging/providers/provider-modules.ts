import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Type } from '@nestjs/common';
import { ConfigError } from '../../common/errors.js';

/** One `provider_modules` entry, split: what to import, and which export (all `*Module` classes without one). */
export interface ProviderModuleSpec {
  target: string;
  exportName?: string;
}

export function parseProviderModuleSpec(spec: string): ProviderModuleSpec {
  const hash = spec.lastIndexOf('#');
  return hash > 0 ? { target: spec.slice(0, hash), exportName: spec.slice(hash + 1) } : { target: spec };
}

/** A path (`./x.js`, `../x`, `/abs/x.js`) is a file; anything else a package name. */
function isPath(target: string): boolean {
  return target.startsWith('.') || path.isAbsolute(target);
}

/**
 * Imports the Nest modules that register custom messaging providers (`@GreenticProvider`), as a
 * bundle's `provider_modules` lists them: a path, relative to `baseDir`, or a package name, imported
 * as the runner itself would import it (installed next to greentic-runner). `#ExportName` picks one
 * export; without it, every exported class whose name ends in `Module`. A spec that does not load or
 * exports no module is a ConfigError naming `where` and the spec.
 */
export async function importProviderModules(
  specs: readonly string[],
  baseDir: string,
  where: string,
): Promise<Type[]> {
  const out: Type[] = [];
  for (const [i, spec] of specs.entries()) {
    const { target, exportName } = parseProviderModuleSpec(spec);
    const label = `${where}: provider_modules[${i}] '${spec}'`;
    const url = isPath(target) ? pathToFileURL(path.resolve(baseDir, target)).href : target;
    let mod: Record<string, unknown>;
    try {
      mod = (await import(url)) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`${label}: cannot import: ${(e as Error).message}`, { spec });
    }
    const picked = Object.entries(mod).filter(
      ([k, v]) =>
        typeof v === 'function' && (exportName !== undefined ? k === exportName : k.endsWith('Module')),
    );
    if (picked.length === 0) {
      const exported = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
      throw new ConfigError(
        `${label}: ${exportName !== undefined ? `no export '${exportName}'` : 'exports no class named *Module'} (its exported classes and functions: ${exported.join(', ') || 'none'})`,
        { spec },
      );
    }
    out.push(...picked.map(([, v]) => v as Type));
  }
  return out;
}
