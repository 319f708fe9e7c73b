import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { PackError } from '../../common/errors.js';
import { DEFAULT_ARCHIVE_LIMITS, type ArchiveLimits } from './constants.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const DOS_DIRECTORY = 0x10;
const UNIX_HOST = 3;
/** Info-ZIP Unicode Path extra field: a second name other unzip tools would use instead. */
const UNICODE_PATH_FIELD = 0x7075;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function fail(code: string, label: string, message: string, details: Record<string, unknown> = {}): never {
  throw new PackError(code, `${label}: ${message}`, details);
}

/**
 * Checks an entry name is a plain relative path. Every rule has its own code so a refusal says
 * exactly what was wrong (`..`, absolute, backslash, empty segment).
 */
export function checkEntryName(name: string, label: string): void {
  if (name.length === 0) fail('pack_entry_path_invalid', label, 'entry with an empty name');
  if (name.includes('\0'))
    fail('pack_entry_path_invalid', label, `entry '${name}' has a NUL byte in its name`);
  if (name.includes('\\'))
    fail('pack_entry_path_backslash', label, `entry '${name}' uses a backslash in its path`, { entry: name });
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) {
    fail('pack_entry_path_absolute', label, `entry '${name}' has an absolute path`, { entry: name });
  }
  const segs = name.split('/');
  if (segs.includes('..'))
    fail('pack_entry_path_traversal', label, `entry '${name}' leaves the pack ('..' in its path)`, {
      entry: name,
    });
  if (name.endsWith('/'))
    fail('pack_entry_special', label, `entry '${name}' is a directory; only regular files are allowed`, {
      entry: name,
    });
  if (segs.some((s) => s === '' || s === '.'))
    fail('pack_entry_path_invalid', label, `entry '${name}' has an empty or '.' path segment`, {
      entry: name,
    });
}

function openZip(buf: Buffer, label: string): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(
      buf,
      { lazyEntries: true, decodeStrings: false, validateEntrySizes: true },
      (err, zip) => {
        if (err || !zip) {
          reject(
            new PackError(
              'pack_archive_invalid',
              `${label}: not a readable ZIP archive (truncated or corrupt): ${err?.message ?? 'no archive'}`,
            ),
          );
        } else resolve(zip);
      },
    );
  });
}

function centralDirectory(zip: ZipFile, label: string): Promise<Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: Entry[] = [];
    zip.on('entry', (e: Entry) => {
      entries.push(e);
      zip.readEntry();
    });
    zip.on('end', () => resolve(entries));
    zip.on('error', (e: Error) =>
      reject(new PackError('pack_archive_invalid', `${label}: corrupt central directory: ${e.message}`)),
    );
    zip.readEntry();
  });
}

/**
 * A stored entry straight from the buffer (the format's case: no per-entry stream). The local
 * header must carry the same name as the central directory, so no ZIP reader that trusts local
 * headers could be shown another file than the one verified here.
 */
function readStored(buf: Buffer, entry: Entry, nameBytes: Buffer, name: string, label: string): Uint8Array {
  const at = entry.relativeOffsetOfLocalHeader;
  if (at + 30 > buf.length || buf.readUInt32LE(at) !== 0x04034b50) {
    fail('pack_archive_invalid', label, `entry '${name}': no local file header at offset ${at}`, {
      entry: name,
    });
  }
  const nameLen = buf.readUInt16LE(at + 26);
  const extraLen = buf.readUInt16LE(at + 28);
  if (!buf.subarray(at + 30, at + 30 + nameLen).equals(nameBytes)) {
    fail('pack_entry_header_mismatch', label, `entry '${name}': its local header names another file`, {
      entry: name,
    });
  }
  const start = at + 30 + nameLen + extraLen;
  const end = start + entry.compressedSize;
  if (end > buf.length || entry.compressedSize !== entry.uncompressedSize) {
    fail(
      'pack_archive_invalid',
      label,
      `entry '${name}': stored data runs past the archive or sizes disagree`,
      { entry: name },
    );
  }
  return new Uint8Array(buf.subarray(start, end));
}

function readEntry(
  zip: ZipFile,
  entry: Entry,
  name: string,
  cap: number,
  label: string,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) {
        reject(
          new PackError(
            'pack_archive_invalid',
            `${label}: cannot read entry '${name}': ${err?.message ?? 'no stream'}`,
          ),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let n = 0;
      stream.on('data', (c: Buffer) => {
        n += c.length;
        // Headers can lie about sizes; count what actually inflates and stop at the cap.
        if (n > cap) {
          stream.destroy();
          reject(
            new PackError('pack_entry_too_large', `${label}: entry '${name}' inflates past ${cap} bytes`, {
              entry: name,
            }),
          );
          return;
        }
        chunks.push(c);
      });
      stream.on('error', (e: Error) => {
        const tooBig = /too many bytes/i.test(e.message);
        reject(
          new PackError(
            tooBig ? 'pack_entry_too_large' : 'pack_archive_invalid',
            `${label}: entry '${name}': ${tooBig ? 'inflates past its declared size' : e.message}`,
            { entry: name },
          ),
        );
      });
      stream.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks, n))));
    });
  });
}

/**
 * Reads a pack archive into memory with every structural check done on the central directory
 * before any entry is inflated: names, entry types (links, directories, devices), duplicates,
 * encryption, compression method, per-entry and total uncompressed size. yauzl reads from the
 * central directory and exposes the external attributes that say what an entry really is.
 */
export async function readArchive(
  bytes: Uint8Array,
  label: string,
  limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
): Promise<Map<string, Uint8Array>> {
  if (bytes.byteLength > limits.maxArchiveBytes) {
    fail(
      'pack_archive_too_large',
      label,
      `archive is ${bytes.byteLength} bytes, over the ${limits.maxArchiveBytes}-byte cap`,
    );
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const zip = await openZip(buf, label);
  try {
    if (zip.entryCount > limits.maxEntries) {
      fail(
        'pack_too_many_entries',
        label,
        `archive has ${zip.entryCount} entries, over the cap of ${limits.maxEntries}`,
      );
    }
    const entries = await centralDirectory(zip, label);
    const names = new Map<Entry, string>();
    const seen = new Set<string>();
    let total = 0;
    for (const e of entries) {
      let name: string;
      try {
        name = utf8.decode(e.fileName as unknown as Buffer);
      } catch {
        fail('pack_entry_path_invalid', label, 'an entry name is not valid UTF-8');
      }
      checkEntryName(name, label);
      if (e.extraFields.some((f) => f.id === UNICODE_PATH_FIELD)) {
        fail('pack_entry_path_invalid', label, `entry '${name}' carries a second (Unicode Path) name`, {
          entry: name,
        });
      }
      const mode = (e.externalFileAttributes >>> 16) & 0xffff;
      if (e.versionMadeBy >> 8 === UNIX_HOST && mode !== 0) {
        const type = mode & S_IFMT;
        if (type === S_IFLNK)
          fail('pack_entry_link', label, `entry '${name}' is a symbolic link`, { entry: name });
        if (type !== S_IFREG && type !== 0) {
          fail(
            'pack_entry_special',
            label,
            `entry '${name}' is not a regular file (mode ${mode.toString(8)})`,
            { entry: name },
          );
        }
      }
      if ((e.externalFileAttributes & DOS_DIRECTORY) !== 0) {
        fail('pack_entry_special', label, `entry '${name}' is a directory; only regular files are allowed`, {
          entry: name,
        });
      }
      if (seen.has(name))
        fail('pack_entry_duplicate', label, `entry '${name}' appears more than once`, { entry: name });
      seen.add(name);
      if ((e.generalPurposeBitFlag & 0x1) !== 0)
        fail('pack_entry_encrypted', label, `entry '${name}' is encrypted`, { entry: name });
      if (e.compressionMethod !== 0 && e.compressionMethod !== 8) {
        fail(
          'pack_entry_compression',
          label,
          `entry '${name}' uses compression method ${e.compressionMethod}; only stored or deflate`,
          { entry: name },
        );
      }
      if (e.uncompressedSize > limits.maxFileBytes) {
        fail(
          'pack_entry_too_large',
          label,
          `entry '${name}' is ${e.uncompressedSize} bytes uncompressed, over the ${limits.maxFileBytes}-byte cap`,
          {
            entry: name,
          },
        );
      }
      total += e.uncompressedSize;
      if (total > limits.maxTotalBytes) {
        fail(
          'pack_total_too_large',
          label,
          `entries expand to more than the ${limits.maxTotalBytes}-byte total cap (zip bomb?)`,
        );
      }
      names.set(e, name);
    }
    const files = new Map<string, Uint8Array>();
    let inflated = 0;
    for (const [e, name] of names) {
      const data =
        e.compressionMethod === 0
          ? readStored(buf, e, e.fileName as unknown as Buffer, name, label)
          : await readEntry(zip, e, name, Math.min(limits.maxFileBytes, e.uncompressedSize), label);
      inflated += data.byteLength;
      if (inflated > limits.maxTotalBytes)
        fail('pack_total_too_large', label, `entries expand past the ${limits.maxTotalBytes}-byte total cap`);
      files.set(name, data);
    }
    return files;
  } finally {
    zip.close();
  }
}
