export * from './constants.js';
export { blake3Hex, packDigest, sha256Hex, DIGEST_PIN } from './hash.js';
export * from './keys.js';
export * from './manifest.js';
export * from './sbom.js';
export * from './signature.js';
export { readArchive, checkEntryName } from './zip-reader.js';
export { writeDeterministicZip, type PackFile } from './zip-writer.js';
export { assemblePack, signPack, type AssembleInput } from './pack-writer.js';
export {
  buildPackFromDir,
  reproducibleTime,
  signingTime,
  type BuildOptions,
  type BuildResult,
} from './pack-builder.js';
