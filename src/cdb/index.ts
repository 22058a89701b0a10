// cdb: constant database, byte-compatible with djb's format (docs/QMAIL.md C.6).
export { cdbHash } from './hash.js';
export { buildCdb, writeCdbAtomic, type CdbBytes } from './write.js';
export { cdbGet, cdbGetAll, cdbEntries, CdbFormatError, CdbReader } from './read.js';
