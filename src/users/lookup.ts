// Who delivers a local part: users/cdb (C.3), then the passwd fallback (C.4.1), then the alias account (C.4.2).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { asciiLower, digitsModulo, tempError } from '../core/index.js';
import { CdbReader } from '../cdb/index.js';
import type { Assignment, PasswdSource } from './types.js';

/** qmail-getpw's GETPW_USERLEN: user names of 32 characters or more are never tried (C.4.1). */
const USERLEN = 32;
/** conf-break. */
const BREAK = '-';

/**
 * Decimal prefix, non-numeric → 0 (qmail's scan_ulong; C.3.5), kept as qmail-lspawn keeps it: in a 32-bit uid_t or
 * gid_t, so modulo 2^32 (4294967296 is 0, and uid 0 is refused). Digit by digit: no precision lost on long numbers.
 */
function decimalPrefix(s: string): number {
  const m = /^\d+/.exec(s);
  return m ? digitsModulo(m[0], 4294967296) : 0;
}

const l1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/**
 * users/cdb opened for this lookup, probed by positional reads (as qmail-lspawn's cdb_seek): a lookup reads the
 * header, a few slots and records, not the whole file (12 MB at 100,000 virtual domains).
 */
function openUsersCdb(path: string): CdbReader | undefined {
  try {
    return CdbReader.open(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw tempError('Trouble reading users/cdb in qmail-lspawn.', err);
  }
}

/** A file changed less than this before it was read may change again within one timestamp tick unseen. */
const RACY_MS = 2000;
/** Answers kept per users/cdb file (a long-lived process: the send child, root's lspawn). */
const KEPT = 10_000;

/**
 * The answers of one users/cdb file, kept while its device, inode, size, mtime and ctime stay the same: newu installs a
 * new file by rename (a new inode), so a lookup after it reads the new file, as qmail-lspawn's per-delivery open
 * does; what costs one stat instead of an open, three or more reads and a close (docs/PERFORMANCE.md). A file changed
 * within 2 s of being read is read again at every lookup until it is older.
 */
const answers = new Map<string, { readonly id: string; readonly found: Map<string, Assignment | undefined> }>();

function statId(path: string): { id: string; settled: boolean } | undefined {
  let st;
  try {
    st = statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    throw tempError('Trouble reading users/cdb in qmail-lspawn.', err);
  }
  if (st === undefined || !st.isFile()) return undefined;
  const changed = Math.max(st.mtimeMs, st.ctimeMs);
  return {
    id: `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`,
    settled: Date.now() - changed >= RACY_MS,
  };
}

/** C.3 through the kept answers of this users/cdb (cdbAssignment reads the file when they cannot be used). */
function keptAssignment(root: string, local: string): Assignment | undefined {
  const path = join(root, 'users', 'cdb');
  const file = statId(path);
  if (file === undefined || !file.settled) {
    answers.delete(path);
    return cdbAssignment(path, local);
  }
  let kept = answers.get(path);
  if (kept?.id !== file.id) {
    kept = { id: file.id, found: new Map() };
    answers.set(path, kept);
  }
  if (kept.found.has(local)) return kept.found.get(local);
  const a = cdbAssignment(path, local);
  if (kept.found.size >= KEPT) kept.found.clear();
  kept.found.set(local, a);
  return a;
}

/** C.3: the users/cdb match for local part `local`, or undefined when there is no cdb or no match. */
function cdbAssignment(path: string, local: string): Assignment | undefined {
  const db = openUsersCdb(path);
  if (!db) return undefined;
  try {
    const wild = db.get('');
    if (wild === undefined) throw new Error('users/cdb has no wildchars record');
    const wildchars = wild.toString('latin1');
    const lower = `!${asciiLower(local)}`;
    const tryKey = (key: string, rest: string | undefined): Assignment | undefined => {
      const v = db.get(l1(key));
      if (v === undefined) return undefined;
      const [user = '', uid = '', gid = '', home = '', dash = '', ext = ''] = v.toString('latin1').split('\0');
      return {
        user,
        uid: decimalPrefix(uid),
        gid: decimalPrefix(gid),
        home,
        dash,
        ext: rest === undefined ? ext : ext + rest,
        via: rest === undefined ? 'simple' : 'wildcard',
        key,
      };
    };
    const simple = tryKey(`${lower}\0`, undefined);
    if (simple) return simple;
    for (let n = local.length; n >= 0; n--) {
      if (n > 0 && !wildchars.includes(lower[n] ?? '')) continue; // lower[n] is lowercase(L)[n-1]
      const found = tryKey(lower.slice(0, n + 1), local.slice(n));
      if (found) return found;
    }
    return undefined;
  } catch (err) {
    throw tempError('Trouble reading users/cdb in qmail-lspawn.', err);
  } finally {
    db.close();
  }
}

/** Whether `home` exists and is owned by `uid` (a real stat; C.4.1). Unusual stat errors are temporary. */
function homeOwnedBy(home: string, uid: number): boolean {
  try {
    return statSync(home).uid === uid;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'ENAMETOOLONG' || code === 'ELOOP') {
      return false;
    }
    throw tempError(`Unable to check the home directory ${home}: ${code ?? String(err)}.`, err);
  }
}

/** C.4.1 (qmail-getpw without the alias step): the account a local part names, or undefined. */
export function getpw(local: string, passwd: PasswdSource): Assignment | undefined {
  let p = local.length;
  for (;;) {
    if (p < USERLEN) {
      const pw = passwd.byName(asciiLower(local.slice(0, p)));
      if (pw && pw.uid !== 0 && homeOwnedBy(pw.home, pw.uid)) {
        const whole = p === local.length;
        return {
          user: pw.name,
          uid: pw.uid,
          gid: pw.gid,
          home: pw.home,
          dash: whole ? '' : BREAK,
          ext: whole ? '' : local.slice(p + 1),
          via: 'passwd',
        };
      }
    }
    if (p === 0) return undefined;
    p--;
    while (p > 0 && local[p] !== BREAK) p--;
  }
}

/**
 * What qmail-lspawn (with qmail-getpw) chooses for local part `local`: users/cdb, then passwd, then `alias`.
 * Throws a temporary QuailError with qmail's texts. An empty local part is the caller's business (C.3.1).
 */
export function lookupAssignment(opts: { root: string; local: string; passwd: PasswdSource }): Assignment {
  const { root, local, passwd } = opts;
  const chosen = keptAssignment(root, local) ?? getpw(local, passwd) ?? aliasAssignment(local, passwd);
  // qmail-lspawn refuses uid 0 whichever way the account was found (C.3.5).
  if (chosen.uid === 0) throw tempError('Not allowed to perform deliveries as root.');
  return chosen;
}

/** C.4.2: the alias account with dash `-` and the whole local part as extension. */
function aliasAssignment(local: string, passwd: PasswdSource): Assignment {
  const alias = passwd.byName('alias');
  if (!alias) throw tempError('Unable to find alias user!');
  return { user: alias.name, uid: alias.uid, gid: alias.gid, home: alias.home, dash: BREAK, ext: local, via: 'alias' };
}
