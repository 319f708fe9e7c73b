import yazl from 'yazl';

export interface PackFile {
  path: string;
  bytes: Uint8Array;
}

/** DOS timestamps cannot say 1970; the format pins every entry to 1980-01-01T00:00:00. */
const DOS_EPOCH_LOCAL = new Date(1980, 0, 1, 0, 0, 0);

export function compareBytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The deterministic ZIP of the format: entries in bytewise-lexical order, stored, mode 0644,
 * fixed DOS timestamps and no extended-timestamp field, so equal inputs give equal bytes. yazl
 * (maintained, small, streaming, no native code) writes it; it refuses `..` and absolute names
 * itself, which is the writer's half of zip-slip safety.
 */
export async function writeDeterministicZip(files: readonly PackFile[]): Promise<Buffer> {
  const sorted = [...files].sort((a, b) => compareBytewise(a.path, b.path));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.path === sorted[i - 1]!.path) throw new Error(`duplicate pack path '${sorted[i]!.path}'`);
  }
  const zip = new yazl.ZipFile();
  for (const f of sorted) {
    zip.addBuffer(Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength), f.path, {
      mtime: DOS_EPOCH_LOCAL,
      mode: 0o100644,
      compress: false,
      forceDosTimestamp: true,
    });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
