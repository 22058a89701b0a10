// cdb: constant database, byte-compatible with djb's format (SEMANTICS.md C.6).
export { cdbHash } from './hash.js';
export { buildCdb, writeCdbAtomic } from './write.js';
export { cdbGet, cdbGetAll, cdbEntries, CdbFile, CdbFormatError } from './read.js';
