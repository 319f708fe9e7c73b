/**
 * Which Greentic world a component implements, read from jco's export list at load time.
 *   greentic:component@0.1.0  exports the function `execute`
 *   greentic:component@0.6.0  exports the instance `greentic:component/node@0.6.0`
 *                             (and usually `greentic:component/component-descriptor@0.6.0`)
 */
import { ComponentLoadError } from '../common/errors.js';
import { WORLD_V01, WORLD_V06, type ComponentWorld } from '../core/component-runtime.js';
import type { JcoExportKind } from './transpile-cache.js';

export const V01_EXECUTE = 'execute';
export const V06_NODE = 'greentic:component/node@0.6.0';
export const V06_DESCRIPTOR = 'greentic:component/component-descriptor@0.6.0';

export interface WorldInfo {
  world: ComponentWorld;
  /** Export names as the component declares them (without jco's camelCase aliases). */
  exports: string[];
  /** 0.6: whether `describe()` is available. */
  hasDescriptor: boolean;
}

/** `greentic:component/node@0.6.0` -> `node`, `.../component-descriptor@0.6.0` -> `componentDescriptor`. */
export function jcoAlias(qualifiedName: string): string {
  const iface = qualifiedName.replace(/^.*\//, '').replace(/@.*$/, '');
  return iface.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The export names a component declares. jco lists an interface export twice, under its
 * qualified name and under a camelCase alias (`node`); the alias is left out.
 */
export function declaredExports(exports: ReadonlyArray<readonly [string, JcoExportKind]>): string[] {
  const aliases = new Set(exports.filter(([name]) => name.includes(':')).map(([name]) => jcoAlias(name)));
  return exports.map(([name]) => name).filter((name) => name.includes(':') || !aliases.has(name));
}

export function detectWorld(
  componentName: string,
  exports: ReadonlyArray<readonly [string, JcoExportKind]>,
): WorldInfo {
  const declared = declaredExports(exports);
  const kind = new Map(exports.map(([name, k]) => [name, k]));
  if (kind.get(V06_NODE) === 'instance') {
    return { world: WORLD_V06, exports: declared, hasDescriptor: kind.get(V06_DESCRIPTOR) === 'instance' };
  }
  if (kind.get(V01_EXECUTE) === 'function') {
    return { world: WORLD_V01, exports: declared, hasDescriptor: false };
  }
  throw new ComponentLoadError(
    `component '${componentName}' implements neither ${WORLD_V01} (export ${V01_EXECUTE}) nor ` +
      `${WORLD_V06} (export node); it exports: ${declared.length ? declared.join(', ') : '(nothing)'}`,
    { component: componentName, exports: declared },
  );
}
