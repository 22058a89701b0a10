// offices: one domain in several offices (DESIGN.md's "sites"): each server's mailbox→office table from the shared
// directory, the scheduler's office router over it, and qmail's files kept in step by LISTEN/NOTIFY and a timer.
export { OfficeKeeper } from './keeper.js';
export { OfficeFileRouter, tableFile } from './router.js';
export { parseTable, type OfficeTable } from './table.js';
export { officeExport, writeExport } from './export.js';
export { badOffice } from './trust.js';
