import { PackError } from '../../common/errors.js';
import { PACK_ARTIFACT_TYPE, PACK_LAYER_MEDIA_TYPE } from '../format/constants.js';
import { packDigest, sha256Hex } from '../format/hash.js';
import type { PackCache } from './pack-cache.js';
import { readCapped } from './pack-resolver.js';
import { RegistryAuth } from './registry-auth.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
const EMPTY_CONFIG = new TextEncoder().encode('{}');
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface OciRef {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  /** `http://host:port` or `https://host`. */
  baseUrl: string;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface OciManifest {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;

/**
 * `oci:<registry>/<repository>[:tag][@sha256:...]` (also `oci://`). Loopback registries are
 * spoken to over plain HTTP (the test and dev registry), every other one over HTTPS.
 */
export function parseOciRef(ref: string): OciRef {
  const rest = ref.replace(/^oci:(\/\/)?/, '');
  const slash = rest.indexOf('/');
  if (slash <= 0)
    throw new PackError(
      'pack_oci_ref_invalid',
      `'${ref}': expected oci:<registry>/<repository>[:tag][@sha256:<hex>]`,
    );
  const registry = rest.slice(0, slash);
  let name = rest.slice(slash + 1);
  let digest: string | undefined;
  const at = name.indexOf('@');
  if (at >= 0) {
    digest = name.slice(at + 1).toLowerCase();
    name = name.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest))
      throw new PackError('pack_oci_ref_invalid', `'${ref}': digest must be sha256:<64 hex>`);
  }
  let tag: string | undefined;
  const lastSeg = name.slice(name.lastIndexOf('/') + 1);
  const colon = lastSeg.indexOf(':');
  if (colon >= 0) {
    tag = lastSeg.slice(colon + 1);
    name = name.slice(0, name.length - lastSeg.length + colon);
  }
  if (!/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/.test(name)) {
    throw new PackError(
      'pack_oci_ref_invalid',
      `'${ref}': repository '${name}' is not a valid OCI name (lowercase, digits, . _ - /)`,
    );
  }
  if (tag !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag))
    throw new PackError('pack_oci_ref_invalid', `'${ref}': invalid tag '${tag}'`);
  if (!tag && !digest) tag = 'latest';
  const baseUrl = `${LOOPBACK.test(registry) ? 'http' : 'https'}://${registry}`;
  return { registry, repository: name, tag, digest, baseUrl };
}

export function formatOciRef(r: OciRef): string {
  return `oci:${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

export interface PulledPack {
  bytes: Uint8Array;
  manifestDigest: string;
  layerDigest: string;
  fromCache: boolean;
}

/**
 * The OCI distribution API with plain fetch: blob upload (POST + monolithic PUT), manifest PUT,
 * manifest and blob GET. Every digest the registry hands back is recomputed here. A registry that
 * answers 401 is authenticated with (`RegistryAuth`): Basic, or a bearer token from its token
 * service, with the credentials Docker's config.json holds for it.
 */
export class OciClient {
  constructor(
    private readonly timeoutMs = 60_000,
    private readonly auth = new RegistryAuth(),
  ) {}

  private async send(url: string, init: RequestInit, authorization: string | undefined, what: string) {
    const headers = new Headers(init.headers);
    if (authorization) headers.set('authorization', authorization);
    try {
      return await fetch(url, { ...init, headers, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw new PackError('pack_fetch_failed', `${what}: ${url}: ${(e as Error).message}`);
    }
  }

  /** One request, answered once more with the credentials a 401's challenge asks for. Bodies are buffers, so they resend. */
  private async call(r: OciRef, url: string, init: RequestInit, what: string): Promise<Response> {
    const res = await this.send(url, init, this.auth.headerFor(r.registry, r.repository), what);
    if (res.status !== 401) return res;
    this.auth.forget(r.registry, r.repository);
    const header = await this.auth.answer(r.registry, r.repository, res, what);
    const again = await this.send(url, init, header, what);
    if (again.status === 401) {
      await again.body?.cancel();
      this.auth.forget(r.registry, r.repository);
      throw this.auth.refused(r.registry, what);
    }
    return again;
  }

  /** Checks that the registry takes its stored credentials (`greentic-pack login`): GET /v2/. */
  async checkLogin(registry: string): Promise<void> {
    const r = parseOciRef(`oci:${registry}/login-check`);
    const res = await this.call(r, `${r.baseUrl}/v2/`, {}, `login to ${registry}`);
    await this.expect(res, [200], `login to ${registry}`);
    await res.body?.cancel();
  }

  private async expect(res: Response, ok: number[], what: string): Promise<void> {
    if (ok.includes(res.status)) return;
    const body = (await res.text().catch(() => '')).slice(0, 300);
    throw new PackError(
      'pack_fetch_failed',
      `${what}: registry answered ${res.status}${body ? `: ${body}` : ''}`,
      { status: res.status },
    );
  }

  private async pushBlob(r: OciRef, bytes: Uint8Array, digest: string): Promise<void> {
    const head = await this.call(
      r,
      `${r.baseUrl}/v2/${r.repository}/blobs/${digest}`,
      { method: 'HEAD' },
      'blob check',
    );
    if (head.status === 200) return;
    const start = await this.call(
      r,
      `${r.baseUrl}/v2/${r.repository}/blobs/uploads/`,
      { method: 'POST' },
      'blob upload start',
    );
    await this.expect(start, [202], 'blob upload start');
    const loc = start.headers.get('location');
    if (!loc) throw new PackError('pack_fetch_failed', 'blob upload start: registry gave no Location');
    const url = new URL(loc, r.baseUrl);
    url.searchParams.set('digest', digest);
    const put = await this.call(
      r,
      url.toString(),
      {
        method: 'PUT',
        body: Buffer.from(bytes),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength) },
      },
      'blob upload',
    );
    await this.expect(put, [201], `blob upload ${digest}`);
  }

  /** Pushes a pack as an OCI artifact; returns the digests (the manifest one is what `@digest` pulls). */
  async push(
    ref: string,
    bytes: Uint8Array,
    meta: { id: string; version: string; title?: string },
  ): Promise<{ ref: OciRef; manifestDigest: string; layerDigest: string }> {
    const r = parseOciRef(ref);
    if (!r.tag) throw new PackError('pack_oci_ref_invalid', `'${ref}': push needs a tag`);
    const layerDigest = packDigest(bytes);
    const configDigest = packDigest(EMPTY_CONFIG);
    await this.pushBlob(r, EMPTY_CONFIG, configDigest);
    await this.pushBlob(r, bytes, layerDigest);
    const manifest: OciManifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: PACK_ARTIFACT_TYPE,
      config: { mediaType: OCI_EMPTY, digest: configDigest, size: EMPTY_CONFIG.byteLength },
      layers: [
        {
          mediaType: PACK_LAYER_MEDIA_TYPE,
          digest: layerDigest,
          size: bytes.byteLength,
          annotations: { 'org.opencontainers.image.title': meta.title ?? `${meta.id}.gtpack` },
        },
      ],
      annotations: { 'org.opencontainers.image.version': meta.version, 'io.greentic.pack.id': meta.id },
    };
    const body = Buffer.from(JSON.stringify(manifest));
    const put = await this.call(
      r,
      `${r.baseUrl}/v2/${r.repository}/manifests/${r.tag}`,
      { method: 'PUT', body, headers: { 'content-type': OCI_MANIFEST } },
      'manifest upload',
    );
    await this.expect(put, [201], `manifest upload ${r.repository}:${r.tag}`);
    return { ref: r, manifestDigest: `sha256:${sha256Hex(body)}`, layerDigest };
  }

  private async fetchManifest(r: OciRef, label: string): Promise<{ manifest: OciManifest; digest: string }> {
    const reference = r.digest ?? r.tag!;
    const res = await this.call(
      r,
      `${r.baseUrl}/v2/${r.repository}/manifests/${reference}`,
      { headers: { accept: OCI_MANIFEST } },
      label,
    );
    if (res.status === 404) {
      await res.body?.cancel();
      throw new PackError('pack_not_found', `${label}: no such manifest in the registry`);
    }
    await this.expect(res, [200], `${label}: manifest`);
    const bytes = await readCapped(
      res,
      MAX_MANIFEST_BYTES,
      label,
      (m) => new PackError('pack_oci_manifest_invalid', m),
    );
    const digest = `sha256:${sha256Hex(bytes)}`;
    if (r.digest && digest !== r.digest) {
      throw new PackError(
        'pack_digest_mismatch',
        `${label}: the registry's manifest is ${digest}, not the requested ${r.digest}`,
        {
          expected: r.digest,
          actual: digest,
        },
      );
    }
    let manifest: OciManifest;
    try {
      manifest = JSON.parse(new TextDecoder().decode(bytes)) as OciManifest;
    } catch (e) {
      throw new PackError(
        'pack_oci_manifest_invalid',
        `${label}: manifest is not JSON: ${(e as Error).message}`,
      );
    }
    if (manifest?.schemaVersion !== 2 || !Array.isArray(manifest.layers)) {
      throw new PackError(
        'pack_oci_manifest_invalid',
        `${label}: not an OCI image manifest (schemaVersion 2 with layers)`,
      );
    }
    return { manifest, digest };
  }

  /** Manifest digest of a reference (tag → digest), for change detection. */
  async resolveDigest(ref: string): Promise<string> {
    const r = parseOciRef(ref);
    if (r.digest) return r.digest;
    return (await this.fetchManifest(r, ref)).digest;
  }

  /**
   * Pulls the pack layer. `pin` (a `sha256:` of the `.gtpack`) must match the layer; the blob is
   * re-hashed whatever the registry claims.
   */
  async pull(ref: string, opts: { pin?: string; cache?: PackCache; maxBytes: number }): Promise<PulledPack> {
    const r = parseOciRef(ref);
    const { manifest, digest: manifestDigest } = await this.fetchManifest(r, ref);
    const layers = manifest.layers.filter((l) => l.mediaType === PACK_LAYER_MEDIA_TYPE);
    if (layers.length !== 1) {
      throw new PackError(
        'pack_oci_not_a_pack',
        `${ref}: expected exactly one '${PACK_LAYER_MEDIA_TYPE}' layer, found ${layers.length}`,
      );
    }
    const layer = layers[0]!;
    if (!/^sha256:[0-9a-f]{64}$/.test(layer.digest))
      throw new PackError(
        'pack_oci_manifest_invalid',
        `${ref}: layer digest '${layer.digest}' is not sha256`,
      );
    if (opts.pin && opts.pin.toLowerCase() !== layer.digest) {
      throw new PackError(
        'pack_digest_mismatch',
        `${ref}: the pack layer is ${layer.digest}, the bundle pins ${opts.pin}`,
        {
          expected: opts.pin,
          actual: layer.digest,
        },
      );
    }
    if (layer.size > opts.maxBytes)
      throw new PackError(
        'pack_archive_too_large',
        `${ref}: layer is ${layer.size} bytes, over the ${opts.maxBytes}-byte cap`,
      );
    const cached = await opts.cache?.get(layer.digest);
    if (cached) return { bytes: cached, manifestDigest, layerDigest: layer.digest, fromCache: true };
    const res = await this.call(
      r,
      `${r.baseUrl}/v2/${r.repository}/blobs/${layer.digest}`,
      { redirect: 'follow' },
      `${ref}: blob`,
    );
    await this.expect(res, [200], `${ref}: blob ${layer.digest}`);
    const bytes = await readCapped(
      res,
      opts.maxBytes,
      ref,
      (m) => new PackError('pack_archive_too_large', m),
    );
    const actual = packDigest(bytes);
    if (actual !== layer.digest || bytes.byteLength !== layer.size) {
      throw new PackError(
        'pack_digest_mismatch',
        `${ref}: blob content is ${actual} (${bytes.byteLength} bytes), the manifest says ${layer.digest} (${layer.size} bytes)`,
        {
          expected: layer.digest,
          actual,
        },
      );
    }
    await opts.cache?.put(layer.digest, bytes);
    return { bytes, manifestDigest, layerDigest: layer.digest, fromCache: false };
  }
}
