import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import {
  applyCliConventions,
  CliExit,
  commanderExitCode,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
} from '../common/cli-conventions.js';
import { GreenticError } from '../../common/errors.js';
import { DEFAULT_ARCHIVE_LIMITS } from '../../packs/format/constants.js';
import { packDigest } from '../../packs/format/hash.js';
import {
  generateKeyPair,
  keyFingerprint,
  keyToJwk,
  parseSecretKey,
  publicKeyToPem,
  secretKeyToPem,
} from '../../packs/format/keys.js';
import { buildPackFromDir, signingTime } from '../../packs/format/pack-builder.js';
import { signPack } from '../../packs/format/pack-writer.js';
import { buildPackV1FromDir, signPackV1 } from '../../packs/format/pack-v1/pack-v1-writer.js';
import { isPackV1Archive, openAnyPack, packSummary } from '../../packs/verify/open-any-pack.js';
import { readArchive } from '../../packs/format/zip-reader.js';
import { inspectPackV1 } from './inspect-pack-v1.js';
import { buildUpstreamPackV1 } from '../../packs/format/pack-v1/upstream-pack-build.js';
import { openUpstreamPackDir } from '../../packs/format/pack-v1/upstream-pack-yaml.js';
import { OciClient } from '../../packs/resolvers/oci-client.js';
import { RegistryAuth } from '../../packs/resolvers/registry-auth.js';
import { writeRegistryCredentials } from '../../packs/resolvers/registry-credentials.js';
import type { VerifiedPack } from '../../packs/verify/pack-verifier.js';
import { loadTrustedKeys, trustPolicy, type PolicyMode } from '../../packs/verify/trust.js';
import { withComponentDescriber } from './describe-components.js';

/** Exit codes (docs/cli.md): an invalid pack and a valid but untrusted one both fail the check. */
export { EXIT_OK, EXIT_USAGE };
export const EXIT_INVALID = EXIT_FAILED;
export const EXIT_UNTRUSTED = EXIT_FAILED;

const UNTRUSTED = new Set(['pack_signature_untrusted', 'pack_signature_missing']);

export interface CliIO {
  out(line: string): void;
  err(line: string): void;
}

const processIO: CliIO = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

function human(n: number): string {
  return n < 1024
    ? `${n} B`
    : n < 1024 * 1024
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** Left-aligned columns, for the human tables of `inspect`. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

async function readPackFile(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (e) {
    // A path on the command line that cannot be read is a usage error (exit 2), as for keys.
    throw new GreenticError('cli_file_unreadable', `${file}: ${(e as Error).message}`, 400);
  }
}

/** Writes via a temp file and rename, so a reader (the runner's watcher) never sees half a pack. */
async function writeAtomic(file: string, bytes: Uint8Array, mode?: number): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, bytes, mode === undefined ? {} : { mode });
  await rename(tmp, file);
}

/** The file name `build` and `pull` write without `-o`: `<id>-<version>.gtpack`. */
export function defaultPackFileName(id: string, version: string): string {
  return `${id}-${version}.gtpack`;
}

const EXAMPLES = {
  '': [
    'greentic-pack keys generate -o keys/release',
    'greentic-pack build packs/support --key keys/release.key',
    'greentic-pack verify support-1.0.0.gtpack --trust keys/release.pub',
  ],
  keys: ['greentic-pack keys generate -o keys/release'],
  'keys generate': [
    'greentic-pack keys generate -o keys/release',
    'greentic-pack keys generate -o keys/dev --format json --if-missing',
  ],
  build: [
    'greentic-pack build packs/support            # writes <id>-<version>.gtpack',
    'greentic-pack build packs/support -o dist/support.gtpack --key keys/release.key',
    'greentic-pack build packs/support --format pack-v1 --json',
  ],
  sign: ['greentic-pack sign support-1.0.0.gtpack --key keys/release.key'],
  verify: [
    'greentic-pack verify support-1.0.0.gtpack --trust keys/release.pub',
    'greentic-pack verify support-1.0.0.gtpack --policy dev --json',
  ],
  inspect: [
    'greentic-pack inspect support-1.0.0.gtpack',
    'greentic-pack inspect support-1.0.0.gtpack --json',
  ],
  push: [
    'greentic-pack push support-1.0.0.gtpack oci:ghcr.io/acme/packs/support:1.0.0',
    'greentic-pack push support-1.0.0.gtpack oci:localhost:5000/support:1.0.0 --json',
  ],
  login: ['echo "$TOKEN" | greentic-pack login ghcr.io -u acme --password-stdin'],
  pull: [
    'greentic-pack pull oci:ghcr.io/acme/packs/support:1.0.0          # writes <id>-<version>.gtpack',
    'greentic-pack pull oci:ghcr.io/acme/packs/support@sha256:… -o support.gtpack --json',
  ],
};

/**
 * `greentic-pack`: keys, build, sign, verify, inspect, push, pull. Returns the exit code
 * (docs/cli.md): 0 ok, 1 the pack is invalid, untrusted or the registry refused, 2 usage error.
 */
/** All of stdin, for `login --password-stdin`. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function runCli(
  argv: readonly string[],
  io: CliIO = processIO,
  stdin: () => Promise<string> = readStdin,
): Promise<number> {
  const progress = (line: string): void => io.err(`… ${line}`);
  const program = new Command('greentic-pack')
    .description('Build, sign, verify and publish Greentic .gtpack archives')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  const keys = program.command('keys').description('manage ed25519 signing keys');
  keys
    .command('generate')
    .description('generate an ed25519 key pair: <out>.key (private, mode 0600) and <out>.pub')
    .requiredOption('-o, --out <prefix>', 'path prefix of the key files')
    .addOption(new Option('--format <format>', 'key file format').choices(['pem', 'json']).default('pem'))
    .option('--force', 'overwrite existing key files')
    .option('--if-missing', 'keep an existing key pair (print its fingerprint) instead of failing')
    .action(async (o: { out: string; format: 'pem' | 'json'; force?: boolean; ifMissing?: boolean }) => {
      const ext = o.format === 'json' ? '.json' : '';
      const priv = `${o.out}.key${ext}`;
      const pub = `${o.out}.pub${ext}`;
      if (o.ifMissing && !o.force && existsSync(priv) && existsSync(pub)) {
        const kp = parseSecretKey(await readFile(priv, 'utf8'), priv);
        io.out(`keeping existing key pair ${priv} / ${pub}`);
        io.out(`fingerprint: ${keyFingerprint(kp.publicKey)}`);
        return;
      }
      const kp = generateKeyPair();
      for (const f of [priv, pub]) {
        if (existsSync(f) && !o.force)
          throw new GreenticError('cli_file_exists', `${f}: already exists (use --force to overwrite)`, 400);
      }
      const privText =
        o.format === 'json' ? JSON.stringify(keyToJwk(kp), null, 2) + '\n' : secretKeyToPem(kp);
      const pubText =
        o.format === 'json'
          ? JSON.stringify(keyToJwk({ publicKey: kp.publicKey }), null, 2) + '\n'
          : publicKeyToPem(kp.publicKey);
      await writeAtomic(priv, new TextEncoder().encode(privText), 0o600);
      await writeAtomic(pub, new TextEncoder().encode(pubText), 0o644);
      io.out(`private key: ${priv} (mode 0600; never commit it)`);
      io.out(`public key:  ${pub}`);
      io.out(`fingerprint: ${keyFingerprint(kp.publicKey)}`);
    });

  program
    .command('build')
    .description(
      "build a .gtpack from a pack directory (pack.yaml, this runner's layout or upstream's, which always builds pack-v1); flows are validated first, their operations against each component's describe()",
    )
    .argument('<dir>', 'pack directory')
    .option('-o, --out <file>', 'output .gtpack (default: <id>-<version>.gtpack in the current directory)')
    .option('--key <file>', 'sign with this private key while building')
    .addOption(
      new Option('--format <format>', "archive layout: today's (sbom.json, pack.sig) or upstream's pack-v1")
        .choices(['legacy', 'pack-v1'])
        .default('legacy'),
    )
    .option('--key-id <id>', 'pack-v1: key_id of the signature (default: the key fingerprint)')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        dir: string,
        o: { out?: string; key?: string; format: string; keyId?: string; json?: boolean },
      ) => {
        const key = o.key
          ? parseSecretKey(await readFile(o.key, 'utf8').catch(notFound(o.key)), o.key)
          : undefined;
        progress(`building ${dir}`);
        const built = async (): Promise<BuiltPack> => {
          // Upstream's pack.yaml layout (pack_id, flows[].file, components[].wasm) always builds pack-v1.
          const upstream = await openUpstreamPackDir(dir);
          if (upstream || o.format === 'pack-v1') {
            const v1 = await withComponentDescriber((describe) =>
              upstream
                ? buildUpstreamPackV1(upstream, { key, keyId: o.keyId, progress, describe })
                : buildPackV1FromDir(dir, { key, keyId: o.keyId, progress, describe }),
            );
            const m = v1.manifest;
            return {
              bytes: v1.bytes,
              warnings: v1.warnings,
              format: 'pack-v1',
              layout: upstream ? " (pack-v1, from upstream's pack.yaml layout)" : ' (pack-v1)',
              id: m.pack_id,
              version: m.version,
              flows: m.flows.length,
              components: m.components.length,
            };
          }
          const r = await withComponentDescriber((describe) =>
            buildPackFromDir(dir, { key, progress, describe }),
          );
          return {
            bytes: r.bytes,
            warnings: r.warnings,
            format: 'legacy',
            layout: '',
            id: r.manifest.meta.pack_id,
            version: r.manifest.meta.version,
            flows: r.manifest.flows.length,
            components: r.manifest.components.length,
          };
        };
        const b = await built();
        const out = o.out ?? defaultPackFileName(b.id, b.version);
        for (const w of b.warnings) io.err(`warning: ${w}`);
        await writeAtomic(out, b.bytes);
        const digest = packDigest(b.bytes);
        const signer = key ? keyFingerprint(key.publicKey) : null;
        if (o.json) {
          io.out(
            JSON.stringify({
              ok: true,
              file: out,
              format: b.format,
              pack: b.id,
              version: b.version,
              flows: b.flows,
              components: b.components,
              size: b.bytes.length,
              digest,
              signer,
              warnings: b.warnings,
            }),
          );
          return;
        }
        io.out(
          `built ${out}${b.layout}: ${b.id}@${b.version}, ${b.flows} flow(s), ${b.components} component(s), ${human(b.bytes.length)}, ${digest}${signer ? `, signed by ${signer}` : ', unsigned'}`,
        );
      },
    );

  program
    .command('sign')
    .description('sign (or re-sign) a .gtpack; the archive must match its own SBOM')
    .argument('<pack>', '.gtpack file')
    .requiredOption('--key <file>', 'private key (PEM or JWK)')
    .option('-o, --out <file>', 'write here instead of in place')
    .action(async (file: string, o: { key: string; out?: string }) => {
      const key = parseSecretKey(await readFile(o.key, 'utf8').catch(notFound(o.key)), o.key);
      const bytes = await readPackFile(file);
      progress(`checking ${file} against its SBOM`);
      const signed = isPackV1Archive(await readArchive(bytes, file))
        ? (await signPackV1(bytes, key, { label: file })).bytes
        : await signPack(bytes, key, { label: file, signedAt: signingTime() });
      await writeAtomic(o.out ?? file, signed);
      io.out(`signed ${o.out ?? file} with key ${keyFingerprint(key.publicKey)} (${packDigest(signed)})`);
    });

  program
    .command('verify')
    .description('verify a .gtpack: structure, SBOM, signature, manifest (exit 0 ok, 2 invalid, 3 untrusted)')
    .argument('<pack>', '.gtpack file')
    .option('--trust <keys...>', 'trusted public keys (files, or inline ed25519:<base64url>)', [])
    .addOption(new Option('--policy <policy>', 'trust policy').choices(['strict', 'dev']).default('strict'))
    .option('--json', 'machine-readable result')
    .action(async (file: string, o: { trust: string[]; policy: PolicyMode; json?: boolean }) => {
      const policy = trustPolicy(o.policy, loadTrustedKeys(o.trust, process.cwd(), '--trust'));
      const bytes = await readPackFile(file);
      try {
        const opened = await openAnyPack(bytes, { label: file, policy, limits: DEFAULT_ARCHIVE_LIMITS });
        const v = packSummary(opened);
        if (o.json) {
          io.out(
            JSON.stringify({
              ok: true,
              format: opened.format,
              pack: v.id,
              version: v.version,
              signer: v.signer ?? null,
              warnings: v.warnings,
              digest: packDigest(bytes),
            }),
          );
        } else {
          io.out(
            `ok: ${file}: ${v.id}@${v.version}${opened.format === 'pack-v1' ? ' (pack-v1)' : ''}${v.signer ? `, signed by trusted key ${v.signer}` : ''}`,
          );
          for (const w of v.warnings) io.err(`warning: ${w}`);
        }
      } catch (e) {
        if (!(e instanceof GreenticError)) throw e;
        const untrusted = UNTRUSTED.has(e.code);
        const code = untrusted ? EXIT_UNTRUSTED : EXIT_INVALID;
        if (o.json) io.out(JSON.stringify({ ok: false, code: e.code, error: e.message }));
        io.err(`${untrusted ? 'untrusted' : 'invalid'} [${e.code}]: ${e.message}`);
        throw new CliExit(code);
      }
    });

  program
    .command('inspect')
    .description('show manifest, flows, components, SBOM and signer (checks structure and SBOM; no trust)')
    .argument('<pack>', '.gtpack file')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: { json?: boolean }) => {
      const bytes = await readPackFile(file);
      let v: VerifiedPack;
      try {
        const opened = await openAnyPack(bytes, { label: file, policy: trustPolicy('dev', []) });
        if (opened.format === 'pack-v1') {
          for (const l of inspectPackV1(opened.pack, {
            digest: packDigest(bytes),
            size: bytes.byteLength,
            json: o.json === true,
          }))
            io.out(l);
          return;
        }
        v = opened.pack;
      } catch (e) {
        if (!(e instanceof GreenticError)) throw e;
        if (o.json) io.out(JSON.stringify({ ok: false, code: e.code, error: e.message }));
        io.err(`invalid [${e.code}]: ${e.message}`);
        throw new CliExit(EXIT_INVALID);
      }
      const env = v.signature.envelope;
      const signer = env
        ? {
            alg: env.alg,
            key_fingerprint: env.key_fingerprint ?? null,
            signed_at_utc: env.signed_at_utc,
            digest: env.digest,
          }
        : null;
      if (o.json) {
        io.out(
          JSON.stringify(
            {
              digest: packDigest(bytes),
              size: bytes.byteLength,
              manifest: v.manifest,
              sbom: v.sbom,
              signature: signer,
            },
            null,
            2,
          ),
        );
        return;
      }
      const m = v.manifest;
      io.out(`pack        ${m.meta.pack_id}@${m.meta.version} (${m.meta.name})`);
      io.out(`digest      ${packDigest(bytes)} (${human(bytes.byteLength)})`);
      io.out(`created     ${m.meta.created_at_utc}`);
      io.out(`entry flows ${m.meta.entry_flows.join(', ')}`);
      io.out(
        signer
          ? `signature   ${signer.alg}, key ${signer.key_fingerprint ?? '(unnamed)'}, signed ${signer.signed_at_utc}`
          : 'signature   none (unsigned)',
      );
      io.out('');
      io.out('flows');
      for (const l of table([
        ['  id', 'kind', 'entry', 'file'],
        ...m.flows.map((f) => [`  ${f.id}`, f.kind, f.entry, f.file_yaml]),
      ]))
        io.out(l);
      io.out('');
      io.out('components');
      if (m.components.length === 0) io.out('  (none)');
      else
        for (const l of table([
          ['  name', 'version', 'world', 'operations', 'file', 'blake3'],
          ...m.components.map((c) => [
            `  ${c.name}`,
            c.version,
            c.world?.replace(/^greentic:component@/, '') ?? '-',
            // Recorded by builds that described the component; older packs have none.
            c.operations?.join(', ') ?? '-',
            c.file_wasm,
            c.hash_blake3.slice(0, 16),
          ]),
        ]))
          io.out(l);
      io.out('');
      io.out('sbom');
      for (const l of table([
        ['  path', 'size', 'media type', 'blake3'],
        ...v.sbom.map((e) => [`  ${e.path}`, String(e.size), e.media_type, e.hash_blake3.slice(0, 16)]),
      ]))
        io.out(l);
    });

  program
    .command('push')
    .description('push a .gtpack to an OCI registry (oci:<registry>/<repository>:<tag>)')
    .argument('<pack>', '.gtpack file')
    .argument('<ref>', 'OCI reference')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, ref: string, o: { json?: boolean }) => {
      const bytes = await readPackFile(file);
      progress(`checking ${file}`);
      const v = packSummary(await openAnyPack(bytes, { label: file, policy: trustPolicy('dev', []) }));
      progress(`uploading ${human(bytes.byteLength)} to ${ref}`);
      const r = await new OciClient().push(ref, bytes, {
        id: v.id,
        version: v.version,
        title: path.basename(file),
      });
      if (o.json) {
        io.out(
          JSON.stringify({
            ok: true,
            ref,
            pack: v.id,
            version: v.version,
            size: bytes.byteLength,
            manifestDigest: r.manifestDigest,
            packDigest: r.layerDigest,
          }),
        );
        return;
      }
      io.out(`pushed ${ref}`);
      io.out(
        `manifest digest: ${r.manifestDigest}  (pull by digest: oci:${r.ref.registry}/${r.ref.repository}@${r.manifestDigest})`,
      );
      io.out(`pack digest:     ${r.layerDigest}  (bundle pin: digest: ${r.layerDigest})`);
    });

  program
    .command('login')
    .description(
      "store credentials for an OCI registry in Docker's config.json ($DOCKER_CONFIG/config.json or ~/.docker/config.json), after checking that the registry takes them; push, pull and the runner's oci: sources use them (as they use docker login's)",
    )
    .argument('<registry>', 'registry host[:port], as oci: references name it')
    .requiredOption('-u, --username <user>', 'user name')
    .option(
      '-p, --password <password>',
      'password (shows in shell history and the process list: prefer --password-stdin)',
    )
    .option('--password-stdin', 'read the password from stdin')
    .action(async (registry: string, o: { username: string; password?: string; passwordStdin?: boolean }) => {
      if ((o.password === undefined) === (o.passwordStdin !== true)) {
        io.err('error: give the password with --password-stdin (or -p), one of them');
        throw new CliExit(EXIT_USAGE);
      }
      const password = o.passwordStdin ? (await stdin()).replace(/\r?\n$/, '') : o.password!;
      if (password === '') {
        io.err('error: the password is empty');
        throw new CliExit(EXIT_USAGE);
      }
      progress(`checking the credentials of '${o.username}' with ${registry}`);
      const given = { username: o.username, password, source: 'the command line' };
      await new OciClient(
        30_000,
        new RegistryAuth(
          () => given,
          30_000,
          () => undefined,
        ),
      ).checkLogin(registry);
      const file = writeRegistryCredentials(registry, o.username, password);
      io.out(`Login Succeeded: credentials for ${registry} stored in ${file}`);
    });

  program
    .command('pull')
    .description('pull a .gtpack from an OCI registry, by tag or by digest; every digest is checked')
    .argument('<ref>', 'OCI reference')
    .option('-o, --out <file>', 'output .gtpack (default: <id>-<version>.gtpack in the current directory)')
    .option('--digest <pin>', 'expected sha256 of the .gtpack')
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, o: { out?: string; digest?: string; json?: boolean }) => {
      progress(`pulling ${ref}`);
      const r = await new OciClient().pull(ref, {
        pin: o.digest,
        maxBytes: DEFAULT_ARCHIVE_LIMITS.maxArchiveBytes,
      });
      // Named after what it holds; the archive is opened (not trusted) to read its id and version.
      let out = o.out;
      if (out === undefined) {
        const v = packSummary(await openAnyPack(r.bytes, { label: ref, policy: trustPolicy('dev', []) }));
        out = defaultPackFileName(v.id, v.version);
      }
      await writeAtomic(out, r.bytes);
      if (o.json) {
        io.out(
          JSON.stringify({
            ok: true,
            ref,
            file: out,
            size: r.bytes.byteLength,
            manifestDigest: r.manifestDigest,
            packDigest: r.layerDigest,
          }),
        );
        return;
      }
      io.out(
        `pulled ${ref} → ${out} (${human(r.bytes.byteLength)}, manifest ${r.manifestDigest}, pack ${r.layerDigest})`,
      );
    });

  applyCliConventions(program, EXAMPLES, io.out);

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CliExit) return e.code;
    if (e instanceof CommanderError) return commanderExitCode(e);
    const json = argv.includes('--json');
    if (e instanceof GreenticError) {
      if (json) io.out(JSON.stringify({ ok: false, code: e.code, error: e.message }));
      io.err(`error [${e.code}]: ${e.message}`);
      // A command line naming what cannot be used (a missing key file, an existing output) is a usage error.
      return e.code.startsWith('cli_') ? EXIT_USAGE : EXIT_FAILED;
    }
    if (json) io.out(JSON.stringify({ ok: false, error: (e as Error).message }));
    io.err(`error: ${(e as Error).message}`);
    return EXIT_FAILED;
  }
}

interface BuiltPack {
  bytes: Uint8Array;
  warnings: string[];
  format: 'legacy' | 'pack-v1';
  /** How the human line names the layout. */
  layout: string;
  id: string;
  version: string;
  flows: number;
  components: number;
}

function notFound(file: string): (e: Error) => never {
  return (e) => {
    throw new GreenticError('cli_file_unreadable', `${file}: ${e.message}`, 400);
  };
}
