/**
 * Hot reload under traffic, through the real app: while workers send webhook messages without
 * pause, broken versions and then a good new version are published over the pack file. No request
 * fails, replies switch from v1 to v2 (and never back), and a broken version never serves. Parked
 * sessions resume on their held version, or restart with a notice once it is no longer held.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunnerApp } from '../src/bootstrap.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { generateKeyPair, publicKeyToPem } from '../src/packs/format/keys.js';
import { buildPackFromDir } from '../src/packs/format/pack-builder.js';
import { replyFlow, sendMessage, writeBundle, writePackDir } from './fixtures/packs/pack-fixtures.js';

const trusted = generateKeyPair();
const untrusted = generateKeyPair();
let dir: string;
let packFile: string;
let app: RunnerApp;
let base: string;

const askFlow = (tag: string): string => `id: ask
type: messaging
nodes:
  ask:
    qa.process:
      questions:
        - { id: name, prompt: "${tag}: your name?", answer_type: text }
    routing:
      - to: answer
  answer:
    reply: { text: "${tag}: hello {{in.name}}" }
`;

async function pack(
  name: string,
  version: string,
  tag: string,
  opts: { broken?: boolean; key?: typeof trusted } = {},
): Promise<Buffer> {
  const flows: Record<string, string> = { 'hello.ygtc': replyFlow('hello', tag), 'ask.ygtc': askFlow(tag) };
  const src = writePackDir(path.join(dir, name), { id: 'hello', version, flows });
  const built = await buildPackFromDir(src, { key: opts.key ?? trusted });
  if (!opts.broken) return built.bytes;
  // A signed pack whose extra flow routes nowhere: the CLI would refuse it, so assemble it by hand.
  const { assemblePack } = await import('../src/packs/format/pack-writer.js');
  const { blake3Hex } = await import('../src/packs/format/hash.js');
  const bad = new TextEncoder().encode(
    `id: bad\ntype: messaging\nnodes:\n  a:\n    reply: { text: "${tag}" }\n    routing:\n      - to: nowhere\n`,
  );
  const manifest = structuredClone(built.manifest);
  manifest.flows.push({
    id: 'bad',
    kind: 'messaging',
    entry: 'a',
    file_yaml: 'flows/bad/flow.ygtc',
    file_json: 'flows/bad/flow.json',
    hash_blake3: blake3Hex(bad),
  });
  const payload = built.files.filter((f) => f.path.startsWith('flows/') || f.path.startsWith('components/'));
  payload.push(
    { path: 'flows/bad/flow.ygtc', bytes: bad },
    { path: 'flows/bad/flow.json', bytes: new TextEncoder().encode('{}') },
  );
  return (await assemblePack({ manifest, files: payload, key: trusted })).bytes;
}

function publish(bytes: Uint8Array): void {
  const tmp = `${packFile}.publishing`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, packFile);
}

interface Status {
  packs: { version: string; lastError?: { code: string; at: string }; held: { version: string }[] }[];
}
// The last status read, so that a wait that times out says what the registry showed instead.
let lastStatus: Status | undefined;
const status = async (): Promise<Status> => {
  lastStatus = (await (await fetch(`${base}/admin/packs/status`)).json()) as Status;
  return lastStatus;
};

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs)
      throw new Error(
        `timed out after ${Date.now() - start} ms waiting for ${what}; the last pack status read: ${JSON.stringify(lastStatus)}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-reload-e2e-'));
  writeFileSync(path.join(dir, 'trusted.pub'), publicKeyToPem(trusted.publicKey));
  packFile = path.join(dir, 'hello.gtpack');
  publish(await pack('v1', '1.0.0', 'v1'));
  const bundle = writeBundle(path.join(dir, 'bundle.yaml'), {
    policy: 'strict',
    keys: ['./trusted.pub'],
    packs: [{ id: 'hello', source: 'file:./hello.gtpack' }],
    channels: { web: { pack: 'hello', flow: 'hello' }, ask: { pack: 'hello', flow: 'ask' } },
  });
  const s = await startApp({
    config: {
      PORT: 0,
      GREENTIC_BUNDLE: bundle,
      LOG_LEVEL: 'silent',
      GREENTIC_PACK_WATCH_INTERVAL_MS: 100,
      GREENTIC_PACK_KEEP_VERSIONS: 2,
      GREENTIC_CACHE_DIR: path.join(dir, 'cache'),
    },
  });
  app = s.app;
  base = s.url;
});

afterAll(async () => {
  await app?.close();
});

describe('hot reload', () => {
  it('swaps under traffic: no request fails, v1 → v2 without going back, broken versions never serve', async () => {
    const WEB = '/webhooks/webhook/acme/dev/default/web';
    const seen: { worker: number; status: number; text: string }[] = [];
    let stop = false;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const r = await sendMessage(base, WEB, { userId: `w${w}-${i}`, text: `m${i}` });
        seen.push({ worker: w, status: r.status, text: r.texts.join('|') });
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    const count = (prefix: string): number => seen.filter((s) => s.text.startsWith(prefix)).length;
    try {
      await until('v1 traffic', async () => (count('v1:') >= 20 ? true : undefined));

      publish(await pack('bad-sig', '1.5.0', 'BROKEN-untrusted', { key: untrusted }));
      await until('the untrusted version to be refused', async () =>
        (await status()).packs[0]!.lastError?.code === 'pack_signature_untrusted' ? true : undefined,
      );
      const afterUntrusted = seen.length;
      await until('traffic after the refusal', async () =>
        seen.length >= afterUntrusted + 20 ? true : undefined,
      );

      publish(await pack('bad-flow', '1.6.0', 'BROKEN-flow', { broken: true }));
      await until('the invalid version to be refused', async () =>
        (await status()).packs[0]!.lastError?.code === 'flow_invalid' ? true : undefined,
      );
      const afterInvalid = seen.length;
      await until('traffic after the refusal', async () =>
        seen.length >= afterInvalid + 20 ? true : undefined,
      );
      expect(count('v2:')).toBe(0);

      publish(await pack('v2', '2.0.0', 'v2'));
      await until('v2 replies', async () => (count('v2:') >= 40 ? true : undefined));
    } finally {
      stop = true;
      await Promise.all(workers);
    }

    expect(seen.filter((s) => s.status !== 200 || !/^v[12]: m\d+$/.test(s.text))).toEqual([]);
    expect(seen.some((s) => s.text.includes('BROKEN'))).toBe(false);
    expect(count('v1:')).toBeGreaterThanOrEqual(60);
    // Per worker, replies are v1 up to the swap and v2 after it: the switch happens once.
    for (const w of [0, 1, 2, 3]) {
      const tags = seen.filter((s) => s.worker === w).map((s) => s.text.slice(0, 2));
      const firstV2 = tags.indexOf('v2');
      expect(firstV2).toBeGreaterThan(0);
      expect(tags.slice(firstV2).every((t) => t === 'v2')).toBe(true);
    }
    const st = await status();
    expect(st.packs[0]!.version).toBe('2.0.0');
    expect(st.packs[0]!.lastError).toBeUndefined();
    expect(st.packs[0]!.held.map((h) => h.version)).toEqual(['1.0.0', '2.0.0']);
  });

  it('resumes a parked session on its held version, restarts it with a notice once evicted', async () => {
    const ASK = '/webhooks/webhook/acme/dev/default/ask';
    // Current is v2 (held: v1, v2). Park one session on v2.
    expect((await sendMessage(base, ASK, { userId: 'parked', text: 'hi' })).texts).toEqual([
      'v2: your name?',
    ]);
    publish(await pack('v3', '3.0.0', 'v3'));
    await until('v3', async () => ((await status()).packs[0]!.version === '3.0.0' ? true : undefined));
    // v2 is still held (keep 2: v2, v3): the parked session finishes on v2; a new one starts on v3.
    expect((await sendMessage(base, ASK, { userId: 'parked', text: 'Ada' })).texts).toEqual([
      'v2: hello Ada',
    ]);
    expect((await sendMessage(base, ASK, { userId: 'fresh', text: 'hi' })).texts).toEqual(['v3: your name?']);
    expect((await sendMessage(base, ASK, { userId: 'parked2', text: 'hi' })).texts).toEqual([
      'v3: your name?',
    ]);

    publish(await pack('v4', '4.0.0', 'v4'));
    await until('v4', async () => ((await status()).packs[0]!.version === '4.0.0' ? true : undefined));
    // Held now: v3, v4. A session parked on v3 resumes on it...
    expect((await sendMessage(base, ASK, { userId: 'parked2', text: 'Bo' })).texts).toEqual(['v3: hello Bo']);
    publish(await pack('v5', '5.0.0', 'v5'));
    await until('v5', async () => ((await status()).packs[0]!.version === '5.0.0' ? true : undefined));
    // ...but one parked on v3 after v5 arrived (held: v4, v5) restarts on v5 with a notice.
    expect((await sendMessage(base, ASK, { userId: 'fresh', text: 'Cy' })).texts).toEqual([
      'This conversation was updated to a new version, so it starts again.',
      'v5: your name?',
    ]);
  });
});
