import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PackError } from '../../common/errors.js';

/**
 * Registry credentials where Docker keeps them: `$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`, `auths.<registry>.auth` = base64(`user:password`) (or `username` and
 * `password` fields). `greentic-pack login` writes the same entry `docker login` would, so either
 * tool's login serves both. Credential helpers (`credsStore`, `credHelpers`) are not run: an entry
 * kept only in a helper is not found here, and the error says so.
 */

export interface RegistryCredentials {
  username: string;
  password: string;
  /** The file they came from, for messages. */
  source: string;
}

export type CredentialLookup = (registry: string) => RegistryCredentials | undefined;

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env['DOCKER_CONFIG'] || path.join(env['HOME'] || os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; [k: string]: unknown }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function readConfig(file: string): DockerConfig | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PackError('registry_config_unreadable', `${file}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new PackError('registry_config_unreadable', `${file}: not JSON: ${(e as Error).message}`);
  }
  if (!isRecord(parsed)) throw new PackError('registry_config_unreadable', `${file}: not a JSON object`);
  return parsed as DockerConfig;
}

/** `https://host:port/v1/` → `host:port`: Docker writes keys with and without a scheme. */
function hostOf(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
}

/** Docker Hub's key in config.json is its v1 index URL. */
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

function sameRegistry(key: string, registry: string): boolean {
  const a = hostOf(key);
  const b = registry.toLowerCase();
  return a === b || (DOCKER_HUB.has(a) && DOCKER_HUB.has(b));
}

/** The credentials config.json holds for `registry` (a host, `host:port`). */
export function readRegistryCredentials(
  registry: string,
  env: NodeJS.ProcessEnv = process.env,
): RegistryCredentials | undefined {
  const file = dockerConfigPath(env);
  const config = readConfig(file);
  if (!config || !isRecord(config.auths)) return undefined;
  for (const [key, entry] of Object.entries(config.auths)) {
    if (!sameRegistry(key, registry) || !isRecord(entry)) continue;
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon <= 0)
        throw new PackError(
          'registry_config_unreadable',
          `${file}: auths["${key}"].auth is not base64 of user:password`,
        );
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source: file };
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string')
      return { username: entry.username, password: entry.password, source: file };
  }
  return undefined;
}

/** Whether config.json delegates `registry` to a credential helper this tool does not run. */
export function credentialHelperFor(
  registry: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const config = readConfig(dockerConfigPath(env));
  if (!config) return undefined;
  const helper = Object.entries(config.credHelpers ?? {}).find(([k]) => sameRegistry(k, registry))?.[1];
  return helper ?? (typeof config.credsStore === 'string' ? config.credsStore : undefined);
}

/**
 * Stores `auths.<registry>.auth` in config.json, keeping every other key of the file; the file is
 * written with mode 0600 (it holds a password) through a rename, so a reader never sees half of it.
 */
export function writeRegistryCredentials(
  registry: string,
  username: string,
  password: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const file = dockerConfigPath(env);
  const config: DockerConfig = readConfig(file) ?? {};
  const auths = isRecord(config.auths) ? config.auths : {};
  for (const key of Object.keys(auths))
    if (sameRegistry(key, registry) && key !== registry) delete auths[key];
  auths[registry] = { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
  config.auths = auths;
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(config, null, '\t') + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}
