import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PackError } from '../../common/errors.js';
import type { PackBinding } from '../../tenancy/bundle.types.js';
import type { ComponentSpec } from '../../core/component-runtime.js';
import type { PackContents, PackFlowFile, PackSource } from '../pack-source.js';

interface RawPackManifest {
  id?: unknown;
  version?: unknown;
  flows?: unknown;
  components?: unknown;
  assets?: unknown;
}

/** `file:` path relative to the bundle's folder (or absolute). */
export function resolveFileSource(source: string, bundleDir: string): string {
  const p = source.startsWith('file://')
    ? source.slice(7)
    : source.startsWith('file:')
      ? source.slice(5)
      : source;
  return path.resolve(bundleDir, p);
}

function str(v: unknown, what: string, file: string): string {
  if (typeof v !== 'string' || v.length === 0)
    throw new PackError('pack_manifest_invalid', `${file}: '${what}' must be a non-empty string`);
  return v;
}

/**
 * A pack as a directory (`pack.yaml` or `manifest.json` listing flows, components and assets by
 * path): the development form. Unsigned by nature; the signed `.gtpack` archive is another source.
 */
export class DirectoryPackSource implements PackSource {
  readonly schemes = ['file'] as const;

  async load(binding: PackBinding, bundleDir: string): Promise<PackContents> {
    const dir = resolveFileSource(binding.source, bundleDir);
    const { file, manifest } = await this.readManifest(dir);
    const id = str(manifest.id, 'id', file);
    const version = manifest.version === undefined ? '0.0.0' : String(manifest.version);
    if (id !== binding.id) {
      throw new PackError(
        'pack_id_mismatch',
        `${file}: pack id '${id}' does not match the bundle's pack '${binding.id}'`,
      );
    }
    const hash = createHash('sha256');
    hash.update(`${id}@${version}\n`);
    const flows: PackFlowFile[] = [];
    for (const [i, f] of asArray(manifest.flows, 'flows', file).entries()) {
      const rel = typeof f === 'string' ? f : str((f as { path?: unknown }).path, `flows[${i}].path`, file);
      const abs = this.inside(dir, rel, file);
      const text = await readFile(abs, 'utf8').catch((e: Error) => {
        throw new PackError('pack_file_missing', `${file}: flows[${i}] '${rel}': ${e.message}`);
      });
      hash.update(`${rel}\n${text}\n`);
      const declaredId = typeof f === 'object' && f ? (f as { id?: unknown }).id : undefined;
      flows.push({ id: typeof declaredId === 'string' ? declaredId : '', path: abs, text });
    }
    const components: ComponentSpec[] = [];
    for (const [i, c] of asArray(manifest.components, 'components', file).entries()) {
      const o = (c ?? {}) as Record<string, unknown>;
      const name = str(o.name, `components[${i}].name`, file);
      const rel = str(o.path, `components[${i}].path`, file);
      const bytes = await readFile(this.inside(dir, rel, file)).catch((e: Error) => {
        throw new PackError('pack_file_missing', `${file}: components[${i}] '${rel}': ${e.message}`);
      });
      hash.update(`${rel}\n`).update(bytes);
      components.push({
        name,
        version: o.version === undefined ? version : String(o.version),
        bytes: new Uint8Array(bytes),
      });
    }
    const assets = new Map<string, Uint8Array>();
    for (const [i, a] of asArray(manifest.assets, 'assets', file).entries()) {
      const rel = str(a, `assets[${i}]`, file);
      const bytes = await readFile(this.inside(dir, rel, file));
      hash.update(`${rel}\n`).update(bytes);
      assets.set(rel, new Uint8Array(bytes));
    }
    return {
      id,
      version,
      digest: 'sha256:' + hash.digest('hex'),
      flows,
      components,
      assets,
      warnings: ['pack directory is unsigned (development form)'],
      location: dir,
    };
  }

  private async readManifest(dir: string): Promise<{ file: string; manifest: RawPackManifest }> {
    for (const name of ['pack.yaml', 'pack.yml', 'manifest.json']) {
      const file = path.join(dir, name);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue;
      }
      try {
        const m: unknown = name.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
        if (!m || typeof m !== 'object') throw new Error('not a mapping');
        return { file, manifest: m as RawPackManifest };
      } catch (e) {
        throw new PackError('pack_manifest_invalid', `${file}: ${(e as Error).message}`);
      }
    }
    throw new PackError('pack_not_found', `${dir}: no pack.yaml or manifest.json`);
  }

  /** Pack paths stay inside the pack: no `..`, no absolute paths. */
  private inside(dir: string, rel: string, file: string): string {
    const abs = path.resolve(dir, rel);
    if (path.isAbsolute(rel) || !abs.startsWith(dir + path.sep)) {
      throw new PackError('pack_path_invalid', `${file}: path '${rel}' leaves the pack directory`);
    }
    return abs;
  }
}

function asArray(v: unknown, what: string, file: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new PackError('pack_manifest_invalid', `${file}: '${what}' must be a list`);
  return v;
}
