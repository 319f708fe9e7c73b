import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Logger } from '@nestjs/common';
import { DIGEST_PIN, digestFor } from '../format/hash.js';

/**
 * Fetched packs on disk, by digest (`<dir>/<algo>/<hex>.gtpack`). A hit is re-hashed before it
 * is returned, and the caller verifies it like a fresh download: a cache file is never trusted.
 */
export class PackCache {
  private readonly logger = new Logger(PackCache.name);

  constructor(readonly dir: string) {}

  private file(digest: string): string {
    const [algo, hex] = digest.split(':') as [string, string];
    return path.join(this.dir, algo, `${hex}.gtpack`);
  }

  async get(digest: string): Promise<Uint8Array | undefined> {
    if (!DIGEST_PIN.test(digest)) return undefined;
    const file = this.file(digest);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(file));
    } catch {
      return undefined;
    }
    if (digestFor(digest, bytes) !== digest) {
      this.logger.warn({ file, digest }, 'cached pack does not match its digest; discarded');
      await rm(file, { force: true });
      return undefined;
    }
    return bytes;
  }

  async put(digest: string, bytes: Uint8Array): Promise<void> {
    if (!DIGEST_PIN.test(digest)) return;
    const file = this.file(digest);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  }
}
