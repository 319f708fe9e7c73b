import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseChallenge } from './registry-auth.js';
import {
  credentialHelperFor,
  dockerConfigPath,
  readRegistryCredentials,
  writeRegistryCredentials,
} from './registry-credentials.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function envWith(config?: unknown): NodeJS.ProcessEnv {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-docker-config-'));
  if (config !== undefined) writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return { DOCKER_CONFIG: dir, HOME: '/nonexistent' };
}

describe("Docker's config.json credentials", () => {
  it('is $DOCKER_CONFIG/config.json, else ~/.docker/config.json', () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: '/x' })).toBe('/x/config.json');
    expect(dockerConfigPath({ HOME: '/home/ada' })).toBe('/home/ada/.docker/config.json');
  });

  it('reads auths entries written with or without a scheme, auth or username/password', () => {
    const env = envWith({
      auths: {
        'https://reg.example.com': { auth: b64('ada:pa:ss') },
        'localhost:5000': { username: 'bob', password: 'pw' },
        'https://index.docker.io/v1/': { auth: b64('hub:secret') },
      },
    });
    expect(readRegistryCredentials('reg.example.com', env)).toMatchObject({
      username: 'ada',
      password: 'pa:ss',
    });
    expect(readRegistryCredentials('localhost:5000', env)).toMatchObject({ username: 'bob', password: 'pw' });
    expect(readRegistryCredentials('docker.io', env)).toMatchObject({ username: 'hub', password: 'secret' });
    expect(readRegistryCredentials('other.example.com', env)).toBeUndefined();
    expect(readRegistryCredentials('x', envWith())).toBeUndefined();
  });

  it('says which file is broken', () => {
    const env = envWith({ auths: { r: { auth: b64('no-colon') } } });
    expect(() => readRegistryCredentials('r', env)).toThrow(
      /auths\["r"\]\.auth is not base64 of user:password/,
    );
    const bad = envWith();
    writeFileSync(path.join(bad['DOCKER_CONFIG']!, 'config.json'), '{');
    expect(() => readRegistryCredentials('r', bad)).toThrow(/config\.json: not JSON/);
  });

  it('writes the entry docker login writes, keeping the rest of the file, mode 0600', () => {
    const env = envWith({
      auths: { 'https://r:5000': { auth: b64('old:old') } },
      credsStore: 'desktop',
      x: 1,
    });
    const file = writeRegistryCredentials('r:5000', 'ada', 'new', env);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(saved).toEqual({ auths: { 'r:5000': { auth: b64('ada:new') } }, credsStore: 'desktop', x: 1 });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readRegistryCredentials('r:5000', env)).toMatchObject({ username: 'ada', password: 'new' });
    expect(credentialHelperFor('r:5000', env)).toBe('desktop');
  });
});

describe('WWW-Authenticate challenges', () => {
  it('parses Bearer and Basic challenges', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a/b:pull,push"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.example.com/token',
        service: 'registry',
        scope: 'repository:a/b:pull,push',
      },
    });
    expect(parseChallenge('Basic realm="greentic"')).toEqual({
      scheme: 'basic',
      params: { realm: 'greentic' },
    });
  });
});
