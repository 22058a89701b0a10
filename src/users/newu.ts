// quail newu / newmrh bodies: compile users/assign → users/cdb (C.2) and control/morercpthosts → .cdb (B.4).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { asciiLower, tempError } from '../core/index.js';
import { writeCdbAtomic, type CdbBytes } from '../cdb/index.js';
import { Control, parseList } from '../control/index.js';
import { AssignFormatError, assignRecords, parseAssign } from './assign.js';

/**
 * Compiles `<root>/users/assign` into `<root>/users/cdb` exactly like qmail-newu (tmp file, fsync, rename).
 * On a format error throws AssignFormatError (temporary) and leaves the old users/cdb untouched.
 */
export function newu(root: string): void {
  const path = join(root, 'users', 'assign');
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw tempError(`unable to read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  }
  let records;
  try {
    records = assignRecords(parseAssign(bytes));
  } catch (err) {
    if (err instanceof AssignFormatError) {
      throw new AssignFormatError(err.line, `${err.what}; the old users/cdb is kept`);
    }
    throw err;
  }
  writeCdbFile(join(root, 'users', 'cdb'), records);
}

function writeCdbFile(path: string, records: Iterable<readonly [CdbBytes, CdbBytes]>): void {
  try {
    writeCdbAtomic(path, records, 0o644);
  } catch (err) {
    throw tempError(`unable to write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  }
}

/**
 * Compiles `control/morercpthosts` into `control/morercpthosts.cdb` like qmail-newmrh: each list entry
 * (0.2 rules) lowercased becomes a key with an empty value, in file order.
 */
export function newmrh(root: string): void {
  const control = new Control(root);
  const text = control.raw('morercpthosts');
  if (text === null) {
    throw tempError(
      `${control.path('morercpthosts')} does not exist; create it (one domain per line) and run newmrh again`,
    );
  }
  const records: Array<[Buffer, Buffer]> = parseList(text).map((host) => [
    Buffer.from(asciiLower(host), 'latin1'),
    Buffer.alloc(0),
  ]);
  writeCdbFile(control.path('morercpthosts.cdb'), records);
}
