// Importing an existing qmail tree: its control files (merged or copied) and users/assign (merged, then newu).
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { controlDef, type ControlName } from '../control/index.js';
import { newu, parseAssign } from '../users/index.js';
import { editAssign, writeAtomic } from './files.js';
import type { ImportReport } from './import.js';
import { readTreeFile, SMALL_FILE_MAX, VPASSWD_MAX } from './importtree.js';

/** Control files whose lines are a set: theirs are added to ours. */
const MERGED: ReadonlySet<string> = new Set<ControlName>([
  'rcpthosts',
  'locals',
  'virtualdomains',
  'morercpthosts',
  'smtproutes',
  'percenthack',
  'badmailfrom',
]);
/** Ours, made by quail init or quail itself: never replaced by the old system's. */
const OURS: ReadonlySet<string> = new Set<ControlName>([
  'quailuser',
  'listeners',
  'directory',
  'servercert.pem',
  'morercpthosts.cdb',
]);

const lines = (t: string): string[] =>
  t
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));

/** Imports ROOT's control/ and users/assign into `root`; with dryRun only the report is made. */
export function importQmail(
  root: string,
  from: string,
  o: { dryRun: boolean; progress?: (done: number, total: number) => void },
): ImportReport {
  const rep: ImportReport = { imported: [], skipped: [] };
  const cdir = join(from, 'control');
  const names = existsSync(cdir)
    ? readdirSync(cdir)
        .filter((n) => !lstatSync(join(cdir, n)).isDirectory())
        .sort()
    : [];
  if (names.length === 0 && !existsSync(join(from, 'users', 'assign'))) {
    rep.skipped.push({
      what: from,
      why: 'neither control/ files nor users/assign: is this a qmail root (e.g. /var/qmail)?',
    });
    return rep;
  }
  const total = names.length + 1;
  let done = 0;
  for (const n of names) {
    o.progress?.(++done, total);
    const what = `control/${n}`;
    const def = controlDef(n);
    if (!def) {
      rep.skipped.push({ what, why: 'not a control file quail reads' });
      continue;
    }
    if (OURS.has(n)) {
      rep.skipped.push({ what, why: 'quail keeps its own' });
      continue;
    }
    // Only a regular file inside their root (a symlink to /etc/shadow as control/smtpgreeting would greet everyone
    // with it; a FIFO would hang the import).
    const got = readTreeFile(from, join(cdir, n), SMALL_FILE_MAX);
    if (got === undefined || 'why' in got) {
      rep.skipped.push({ what, why: `not read: ${got?.why ?? 'gone'}` });
      continue;
    }
    const theirs = got.text;
    const path = join(root, 'control', n);
    const ours = existsSync(path) ? readFileSync(path, 'latin1') : null;
    if (MERGED.has(n)) {
      const have = new Set(lines(ours ?? '').map((l) => l.toLowerCase()));
      const add = lines(theirs).filter((l) => !have.has(l.toLowerCase()));
      if (add.length === 0) {
        rep.skipped.push({ what, why: 'every line already present' });
        continue;
      }
      if (!o.dryRun) writeAtomic(path, `${(ours ?? '').replace(/\n?$/, ours ? '\n' : '')}${add.join('\n')}\n`);
      rep.imported.push(`${what}: ${add.length} line(s) added`);
    } else if (ours === null) {
      if (!o.dryRun) writeAtomic(path, theirs);
      rep.imported.push(what);
    } else if (ours.trim() !== theirs.trim()) {
      rep.skipped.push({
        what,
        why: `kept ours (${JSON.stringify(ours.trim().slice(0, 60))}); theirs says ${JSON.stringify(theirs.trim().slice(0, 60))}`,
      });
    } else {
      rep.skipped.push({ what, why: 'same as ours' });
    }
  }
  o.progress?.(++done, total);
  const assignFile = readTreeFile(from, join(from, 'users', 'assign'), VPASSWD_MAX);
  if (assignFile !== undefined && 'why' in assignFile)
    rep.skipped.push({ what: 'users/assign', why: `not read: ${assignFile.why}` });
  else if (assignFile !== undefined) {
    const text = assignFile.text;
    try {
      parseAssign(Buffer.from(text, 'latin1'));
    } catch (err) {
      rep.skipped.push({ what: 'users/assign', why: `not valid: ${(err as Error).message}` });
      return rep;
    }
    const theirs = text.split('\n').filter((l) => l !== '' && !l.startsWith('.'));
    const mine = join(root, 'users', 'assign');
    const cur = existsSync(mine) ? readFileSync(mine, 'latin1') : null;
    const curKeys = new Set((cur ?? '').split('\n').map((l) => l.slice(0, l.indexOf(':') + 1).toLowerCase()));
    const add = theirs.filter((l) => !curKeys.has(l.slice(0, l.indexOf(':') + 1).toLowerCase()));
    const clash = theirs.length - add.length;
    if (clash > 0)
      rep.skipped.push({ what: 'users/assign', why: `${clash} entr(y/ies) already assigned here; kept ours` });
    if (add.length > 0) {
      if (!o.dryRun) {
        writeAtomic(mine, editAssign(cur, add, []) ?? cur ?? '.\n');
        newu(root);
      }
      rep.imported.push(`users/assign: ${add.length} entr(y/ies) added (users/cdb rebuilt)`);
    }
  }
  return rep;
}
