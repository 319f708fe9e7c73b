import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, FlowValidationError } from '../../common/errors.js';
import { BundleRegistry } from '../../tenancy/bundle-registry.service.js';
import { packOnlyBundle, packUrls, readPackEntrypoint } from './pack-bundle.js';

const flow = (id: string, type: string) =>
  `id: ${id}\ntype: ${type}\nnodes:\n  answer:\n    reply: { text: "${id}" }\n`;

let root: string;

/** A pack directory with these flows (file name → text) and extra manifest keys. */
function packDir(name: string, flows: Record<string, string>, extra: Record<string, unknown> = {}): string {
  const dir = path.join(root, name);
  mkdirSync(path.join(dir, 'flows'), { recursive: true });
  for (const [file, text] of Object.entries(flows)) writeFileSync(path.join(dir, 'flows', file), text);
  writeFileSync(
    path.join(dir, 'pack.yaml'),
    stringify({ id: name, version: '0.3.0', flows: Object.keys(flows).map((f) => `flows/${f}`), ...extra }),
  );
  return dir;
}

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'greentic-pack-bundle-'));
});

describe('readPackEntrypoint', () => {
  it('binds the first messaging flow of a directory, skipping flows of other types', async () => {
    const dir = packDir('mixed', {
      'a.ygtc': flow('nightly', 'timer'),
      'b.ygtc': flow('chat', 'messaging'),
      'c.ygtc': flow('other', 'messaging'),
    });
    const p = await readPackEntrypoint(dir);
    expect(p).toMatchObject({
      id: 'mixed',
      version: '0.3.0',
      layout: 'directory',
      location: dir,
      flow: 'chat',
    });
    expect(p.flows).toEqual([
      { id: 'nightly', kind: 'timer' },
      { id: 'chat', kind: 'messaging' },
      { id: 'other', kind: 'messaging' },
    ]);
  });

  it('prefers the manifest entry_flows, in their order', async () => {
    const dir = packDir(
      'entries',
      { 'a.ygtc': flow('first', 'messaging'), 'b.ygtc': flow('second', 'messaging') },
      { entry_flows: ['second', 'first'] },
    );
    expect((await readPackEntrypoint(dir)).flow).toBe('second');
  });

  it('resolves a relative path against the working directory', async () => {
    const dir = packDir('relative', { 'a.ygtc': flow('chat', 'messaging') });
    const p = await readPackEntrypoint('relative', root);
    expect(p.location).toBe(dir);
  });

  it('a pack without a messaging flow names the flows it has', async () => {
    const dir = packDir('jobs', { 'a.ygtc': flow('nightly', 'timer'), 'b.ygtc': flow('hook', 'webhook') });
    const e = await readPackEntrypoint(dir).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toBe(
      `--pack ${dir}: pack 'jobs' has no messaging flow to bind the web and webchat channels to (its flows: nightly (timer), hook (webhook))`,
    );
  });

  it('a pack without flows says so', async () => {
    const dir = packDir('empty', {});
    await expect(readPackEntrypoint(dir)).rejects.toThrow(
      `--pack ${dir}: pack 'empty' has no messaging flow to bind the web and webchat channels to (it has no flows)`,
    );
  });

  it('a flow that does not parse is reported rather than "no messaging flow"', async () => {
    const dir = packDir('broken', { 'a.ygtc': 'id: broken\ntype: messaging\nnodes: [' });
    const e = await readPackEntrypoint(dir).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FlowValidationError);
    expect((e as Error).message).toMatch(/^pack 'broken' has invalid flows:\n {2}\S+a\.ygtc:\d+:\d+: /);
  });

  it('a missing path is named, absolute', async () => {
    const missing = path.join(root, 'no', 'such.gtpack');
    const e = await readPackEntrypoint('no/such.gtpack', root).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toBe(`--pack ${missing}: no such file or directory`);
  });

  it('a directory that is not a pack says what it lacks', async () => {
    const dir = path.join(root, 'plain');
    mkdirSync(dir);
    await expect(readPackEntrypoint(dir)).rejects.toThrow(
      `--pack ${dir}: a directory without pack.yaml or manifest.json (not a pack)`,
    );
  });

  it('an upstream pack.yaml source (pack_id, no id) is named as one', async () => {
    const dir = path.join(root, 'upstream-src');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'pack.yaml'), 'pack_id: ai.greentic.example\nversion: 0.1.0\n');
    await expect(readPackEntrypoint(dir)).rejects.toThrow(
      `--pack ${path.join(dir, 'pack.yaml')}: no 'id' (a 'pack_id' manifest is upstream's build source: pass the .gtpack built from it)`,
    );
  });

  it('a file that is not a pack archive fails with the reader error naming it', async () => {
    const file = path.join(root, 'notes.gtpack');
    writeFileSync(file, 'not a zip');
    await expect(readPackEntrypoint(file)).rejects.toThrow(file);
  });
});

describe('packOnlyBundle', () => {
  it('one tenant local/dev/default with web and webchat bound to the flow, dev trust policy', async () => {
    const dir = packDir('bound', { 'a.ygtc': flow('chat', 'messaging') });
    const bundle = packOnlyBundle(await readPackEntrypoint(dir));
    expect(bundle.trust).toEqual({ policy: 'dev', keys: [] });
    const registry = new BundleRegistry(bundle);
    expect(registry.tenants().map((t) => t.id)).toEqual(['local']);
    expect(registry.tenant('local').packs).toEqual([{ id: 'bound', source: `file:${dir}` }]);
    const web = registry.resolveChannel({ tenant: 'local', env: 'dev', team: 'default', channel: 'web' });
    expect(web.tenant).toEqual({ tenantId: 'local', envId: 'dev', teamId: 'default' });
    expect(web.channel).toMatchObject({ provider: 'webhook', pack: 'bound', flow: 'chat' });
    const chat = registry.resolveChannel({
      tenant: 'local',
      env: 'dev',
      team: 'default',
      channel: 'webchat',
    });
    expect(chat.channel).toMatchObject({
      provider: 'webchat',
      pack: 'bound',
      flow: 'chat',
      settings: { title: 'bound 0.3.0', bot_name: 'bound' },
    });
    expect(() =>
      registry.resolveChannel({ tenant: 'local', env: 'prod', team: 'default', channel: 'web' }),
    ).toThrow();
  });

  it('packUrls: the webhook, chat page and Direct Line base under the runner URL', () => {
    expect(packUrls('http://127.0.0.1:8080')).toEqual({
      webhook: 'http://127.0.0.1:8080/webhooks/webhook/local/dev/default/web',
      page: 'http://127.0.0.1:8080/webchat/local/dev/default/webchat',
      directLine: 'http://127.0.0.1:8080/webchat/local/dev/default/webchat/v3/directline',
    });
  });
});
