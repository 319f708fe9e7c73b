/**
 * A read-only `wasi:filesystem` over one host directory: a pack's `assets/`, preopened at `/`
 * for the components of that pack (upstream packs' components read `assets/cards/x.json` this way).
 *
 * preview2-shim's isolated filesystem (`createFilesystem`) does the path work (no absolute paths,
 * no `..` or symlink escape out of the preopen) but lets a guest write. Every descriptor handed to
 * the guest is therefore this class, which holds the shim's descriptor and forwards only the
 * reading methods; anything that would create, change or remove a file answers `read-only`
 * (a `wasi:filesystem/types` error-code, thrown as the shim throws its own).
 */
import * as filesystem from '@bytecodealliance/preview2-shim/filesystem';

/** The shim's descriptor, as far as this wrapper calls it. */
interface ShimDescriptor {
  readViaStream(offset: bigint): unknown;
  advise(offset: bigint, length: bigint, advice: string): void;
  syncData(): void;
  getType(): string;
  read(length: bigint, offset: bigint): [Uint8Array, boolean];
  readDirectory(): unknown;
  sync(): void;
  stat(): unknown;
  statAt(pathFlags: PathFlags, path: string): unknown;
  openAt(pathFlags: PathFlags, path: string, openFlags: OpenFlags, flags: DescriptorFlags): ShimDescriptor;
  readlinkAt(path: string): string;
  isSameObject(other: ShimDescriptor): boolean;
  metadataHash(): unknown;
  metadataHashAt(pathFlags: PathFlags, path: string): unknown;
}

interface PathFlags {
  symlinkFollow?: boolean;
}
interface OpenFlags {
  create?: boolean;
  directory?: boolean;
  exclusive?: boolean;
  truncate?: boolean;
}
interface DescriptorFlags {
  read?: boolean;
  write?: boolean;
  fileIntegritySync?: boolean;
  dataIntegritySync?: boolean;
  requestedWriteSync?: boolean;
  mutateDirectory?: boolean;
}

// The package's `types` condition points at the browser declarations; these are Node's.
const shim = filesystem as unknown as {
  createFilesystem(config: { preopens: Record<string, string> }): {
    preopens: { getDirectories(): Array<[ShimDescriptor, string]> };
    types: { DirectoryEntryStream: unknown; filesystemErrorCode(err: unknown): unknown };
  };
};

const READ_ONLY = 'read-only';
const symbolDispose: symbol = Symbol.dispose ?? Symbol.for('dispose');

export class ReadOnlyDescriptor {
  readonly #inner: ShimDescriptor;

  constructor(inner: ShimDescriptor) {
    this.#inner = inner;
  }

  readViaStream(offset: bigint): unknown {
    return this.#inner.readViaStream(offset);
  }
  writeViaStream(): never {
    throw READ_ONLY;
  }
  appendViaStream(): never {
    throw READ_ONLY;
  }
  advise(offset: bigint, length: bigint, advice: string): void {
    this.#inner.advise(offset, length, advice);
  }
  syncData(): void {
    this.#inner.syncData();
  }
  getFlags(): DescriptorFlags {
    return { read: true };
  }
  getType(): string {
    return this.#inner.getType();
  }
  setSize(): never {
    throw READ_ONLY;
  }
  setTimes(): never {
    throw READ_ONLY;
  }
  read(length: bigint, offset: bigint): [Uint8Array, boolean] {
    return this.#inner.read(length, offset);
  }
  write(): never {
    throw READ_ONLY;
  }
  readDirectory(): unknown {
    return this.#inner.readDirectory();
  }
  sync(): void {
    this.#inner.sync();
  }
  createDirectoryAt(): never {
    throw READ_ONLY;
  }
  stat(): unknown {
    return this.#inner.stat();
  }
  statAt(pathFlags: PathFlags, path: string): unknown {
    return this.#inner.statAt(pathFlags, path);
  }
  setTimesAt(): never {
    throw READ_ONLY;
  }
  linkAt(): never {
    throw READ_ONLY;
  }
  openAt(
    pathFlags: PathFlags,
    path: string,
    openFlags: OpenFlags,
    flags: DescriptorFlags,
  ): ReadOnlyDescriptor {
    if (
      openFlags.create ||
      openFlags.truncate ||
      openFlags.exclusive ||
      flags.write ||
      flags.mutateDirectory
    ) {
      throw READ_ONLY;
    }
    return new ReadOnlyDescriptor(this.#inner.openAt(pathFlags, path, openFlags, flags));
  }
  readlinkAt(path: string): string {
    return this.#inner.readlinkAt(path);
  }
  removeDirectoryAt(): never {
    throw READ_ONLY;
  }
  renameAt(): never {
    throw READ_ONLY;
  }
  symlinkAt(): never {
    throw READ_ONLY;
  }
  unlinkFileAt(): never {
    throw READ_ONLY;
  }
  isSameObject(other: unknown): boolean {
    return other instanceof ReadOnlyDescriptor && this.#inner.isSameObject(other.#inner);
  }
  metadataHash(): unknown {
    return this.#inner.metadataHash();
  }
  metadataHashAt(pathFlags: PathFlags, path: string): unknown {
    return this.#inner.metadataHashAt(pathFlags, path);
  }
  /** The guest dropped its handle: close the shim's file too. */
  [symbolDispose](): void {
    const dispose = (this.#inner as unknown as Record<symbol, (() => void) | undefined>)[symbolDispose];
    dispose?.call(this.#inner);
  }
}

/** `wasi:filesystem/types` and `/preopens` with `hostDir` visible read-only at `/`. */
export function createReadOnlyFilesystem(hostDir: string): { preopens: object; types: object } {
  const fs = shim.createFilesystem({ preopens: { '/': hostDir } });
  const roots = fs.preopens
    .getDirectories()
    .map(([d, path]): [ReadOnlyDescriptor, string] => [new ReadOnlyDescriptor(d), path]);
  return {
    preopens: { getDirectories: () => [...roots] },
    types: {
      Descriptor: ReadOnlyDescriptor,
      DirectoryEntryStream: fs.types.DirectoryEntryStream,
      filesystemErrorCode: (err: unknown) => fs.types.filesystemErrorCode(err),
    },
  };
}
