// Moving a Maildir between offices (src/offices/README.md, "Moving a mailbox"): the old office's server carries its
// files through the shared directory, the new office's server writes them; each step is repeatable after a crash.
import { chownSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { errText } from '../core/index.js';
import type { Directory, Domain, Mailbox, MailboxMove, MoveFile } from '../directory/index.js';
import { recordDelivery, recordRemoval } from '../maildir/index.js';
import { badAccount, badDomainName, badLocal, REFUSED_FIX } from './trust.js';

/** What one pass did, for the log. */
export interface MovePassReport {
  /** Files carried into the directory (old office), written into the Maildir (new office), removed (old office). */
  pushed: number;
  written: number;
  removed: number;
  /** Moves found finished in this pass. */
  finished: MailboxMove[];
  /** Trouble with one move (the others went on); each is retried at the next pass. */
  errors: string[];
}

export interface MoverOptions {
  readonly root: string;
  readonly office: string;
  readonly dir: Directory;
  readonly now?: () => number;
  /** At most this many bytes of one move wait in the directory at a time (at least one file always goes). */
  readonly capBytes?: number;
  /** A finished move's old Maildir is looked at this long after, for a delivery that was under way at the switch. */
  readonly lingerMs?: number;
}

const MOVE_CAP_BYTES = 32 * 1024 * 1024;
export const MOVE_LINGER_MS = 10 * 60 * 1000;

interface LocalFile {
  readonly folder: string;
  readonly sub: 'new' | 'cur';
  readonly file: string;
  readonly name: string;
  readonly info: string;
}

const key = (folder: string, name: string): string => `${folder}/${name}`;
const baseOf = (file: string): string => file.split(':')[0] ?? file;

/** The inbox ('') and the Maildir++ folders (`.Sent`: a directory with cur/ and new/). */
function folders(maildir: string): string[] {
  const out = [''];
  let names: string[] = [];
  try {
    names = readdirSync(maildir);
  } catch {
    return [];
  }
  for (const n of names)
    if (n.startsWith('.') && n !== '.' && n !== '..' && existsSync(join(maildir, n, 'cur'))) out.push(n);
  return out;
}

/** Every message file of a Maildir, inbox and folders, new/ and cur/ (tmp/ is a delivery under way: not yet mail). */
function scan(maildir: string): LocalFile[] {
  const out: LocalFile[] = [];
  for (const folder of folders(maildir))
    for (const sub of ['new', 'cur'] as const) {
      let names: string[] = [];
      try {
        names = readdirSync(join(maildir, folder, sub));
      } catch {
        continue;
      }
      for (const file of names) {
        if (file.startsWith('.')) continue;
        const name = baseOf(file);
        out.push({ folder, sub, file, name, info: file.slice(name.length) });
      }
    }
  return out;
}

function mkdirOwned(path: string, mode: number, uid: number, gid: number): void {
  if (existsSync(path)) return;
  mkdirSync(path, { mode });
  if (process.getuid?.() === 0) chownSync(path, uid, gid);
}

function fsyncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** One pass over this office's moves: carry out (old office), write in (new office), finish. Never throws. */
export async function movePass(o: MoverOptions): Promise<MovePassReport> {
  const now = o.now ?? Date.now;
  const report: MovePassReport = { pushed: 0, written: 0, removed: 0, finished: [], errors: [] };
  let moves: MailboxMove[];
  try {
    moves = await o.dir.officeMoves(o.office, now() - (o.lingerMs ?? MOVE_LINGER_MS));
  } catch (err) {
    report.errors.push(`reading the moves: ${errText(err)}`);
    return report;
  }
  for (const m of moves) {
    try {
      if (m.to === o.office && m.finished === null) await writeIn(o, m, report);
      if (m.from === o.office) await carryOut(o, m, report);
    } catch (err) {
      report.errors.push(`moving ${m.local}@${m.domain} (${m.from} → ${m.to}): ${errText(err)}`);
    }
  }
  return report;
}

/**
 * Why the mailbox's home (domains/DOMAIN/LOCAL, from the shared rows) may not be read, written or chowned here as
 * root, or undefined: a name with `/` or `..` would be a path anywhere on this host.
 */
function badHome(box: Mailbox): string | undefined {
  const bad = badDomainName(box.domain) ?? badLocal(box.local);
  return bad === undefined ? undefined : `refused: ${bad}; ${REFUSED_FIX}`;
}

/** The old office: new files into the directory (up to the cap), written ones removed here, finished when empty. */
async function carryOut(o: MoverOptions, m: MailboxMove, report: MovePassReport): Promise<void> {
  const box = await o.dir.getMailbox(m.domain, m.local);
  if (!box) {
    if (m.finished === null && (await o.dir.finishMove(m.id, 'the mailbox was deleted during the move')))
      report.finished.push(m);
    return;
  }
  const bad = badHome(box);
  if (bad !== undefined) {
    report.errors.push(`moving ${m.local}@${m.domain}: ${bad}`);
    return;
  }
  // Moved back here since (after this move finished): what is in the Maildir now is this office's own mail.
  if (m.finished !== null && (await o.dir.mailboxOffice(m.domain, m.local)) === o.office) return;
  const maildir = join(o.root, box.home, 'Maildir');
  const known = new Map((await o.dir.moveFileKeys(m.id)).map((k) => [key(k.folder, k.name), k]));
  let inFlight = await o.dir.inFlightBytes(m.id);
  const cap = o.capBytes ?? MOVE_CAP_BYTES;
  let left = 0;
  let removedBytes = 0;
  let removed = 0;
  for (const f of scan(maildir)) {
    const path = join(maildir, f.folder, f.sub, f.file);
    const k = known.get(key(f.folder, f.name));
    if (k?.written === true) {
      // The new office has it on disk: this copy goes.
      try {
        const size = statSync(path).size;
        unlinkSync(path);
        removedBytes += size;
        removed++;
      } catch {
        left++; // renamed meanwhile (a flag changed): the next pass finds it again
      }
      continue;
    }
    left++;
    if (k !== undefined) continue; // carried, not yet written there
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch {
      continue; // gone or renamed meanwhile: the next pass sees what is there
    }
    if (inFlight > 0 && inFlight + data.length > cap) continue; // the next pass, when the new office has caught up
    const file: MoveFile = { folder: f.folder, name: f.name, sub: f.sub, info: f.info, data };
    if (await o.dir.pushMoveFile(m.id, file)) report.pushed++;
    inFlight += data.length;
  }
  if (removed > 0) {
    report.removed += removed;
    await recordRemoval(maildir, removedBytes, removed);
  }
  if (left === 0 && m.finished === null && (await o.dir.finishMove(m.id))) report.finished.push(m);
}

/**
 * Why a carried file may not be written into the Maildir, or undefined: the new office writes as root under the
 * names the directory gives, so a folder, name or flags part with `/` or `..` would write anywhere on this host.
 */
function badMoveFile(f: Pick<MoveFile, 'folder' | 'name' | 'info'>): string | undefined {
  const show = JSON.stringify(`${f.folder}/${f.name}${f.info}`);
  if (f.folder !== '' && !/^\.[^/\0]+$/.test(f.folder)) return `folder of ${show} is not a Maildir++ folder name`;
  if (f.folder === '..') return `folder of ${show} is not a Maildir++ folder name`;
  if (!/^[^./\0][^/\0]*$/.test(f.name)) return `${show} is not a Maildir file name`;
  if (f.info.includes('/') || f.info.includes('\0')) return `flags of ${show} hold a /`;
  return undefined;
}

function badAccountOf(root: string, a: Domain['account']): string | undefined {
  const bad = badAccount(root, a);
  return bad === undefined ? undefined : `refused: ${bad}; ${REFUSED_FIX}`;
}

/** The new office: each carried file written (tmp, fsync, rename; skipped when already here), then marked written. */
async function writeIn(o: MoverOptions, m: MailboxMove, report: MovePassReport): Promise<void> {
  const box = await o.dir.getMailbox(m.domain, m.local);
  const domain = await o.dir.getDomain(m.domain);
  if (!box || !domain) return; // deleted: the old office ends the move
  // Written and chowned as root: the home's names and the account come from the shared rows (README, trust.ts).
  const bad = badHome(box) ?? badAccountOf(o.root, domain.account);
  if (bad !== undefined) {
    report.errors.push(`moving ${m.local}@${m.domain}: ${bad}`);
    return;
  }
  const { uid, gid } = domain.account;
  const maildir = join(o.root, box.home, 'Maildir');
  // Normally made by the keeper's repair already (every mailbox of the directory has one on every server).
  const domainDir = dirname(join(o.root, box.home));
  if (!existsSync(domainDir)) {
    mkdirSync(dirname(domainDir), { recursive: true, mode: 0o755 });
    mkdirOwned(domainDir, 0o755, uid, gid);
  }
  mkdirOwned(join(o.root, box.home), 0o700, uid, gid);
  const present = new Map<string, Set<string>>();
  for (;;) {
    const files = await o.dir.unwrittenMoveFiles(m.id, 32);
    if (files.length === 0) return;
    for (const f of files) {
      const bad = badMoveFile(f);
      if (bad !== undefined) {
        // Not this office's to write: dropped from the directory (never retried) and said. The old office's scan
        // never makes such a file; the directory is shared by every office, so what it says is checked here.
        report.errors.push(`moving ${m.local}@${m.domain}: a carried file was refused: ${bad}`);
        await o.dir.markMoveFileWritten(m.id, f.folder, f.name);
        continue;
      }
      const dir = join(maildir, f.folder);
      let have = present.get(f.folder);
      if (have === undefined) {
        for (const d of [maildir, dir]) {
          mkdirOwned(d, 0o700, uid, gid);
          for (const s of ['cur', 'new', 'tmp']) mkdirOwned(join(d, s), 0o700, uid, gid);
        }
        if (f.folder !== '' && !existsSync(join(dir, 'maildirfolder'))) writeFileSync(join(dir, 'maildirfolder'), '');
        have = new Set([...readdirSync(join(dir, 'new')), ...readdirSync(join(dir, 'cur'))].map(baseOf));
        present.set(f.folder, have);
      }
      // Already here: written before a crash that came before the mark. Never twice.
      if (!have.has(f.name)) {
        const tmp = join(dir, 'tmp', f.name);
        const fd = openSync(tmp, 'w', 0o600);
        try {
          writeSync(fd, f.data);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        if (process.getuid?.() === 0) chownSync(tmp, uid, gid);
        renameSync(tmp, join(dir, f.sub, `${f.name}${f.info}`));
        fsyncDir(join(dir, f.sub));
        have.add(f.name);
        if (existsSync(join(maildir, 'maildirsize'))) recordDelivery(maildir, f.data.length); // Maildir++: one for all folders
        report.written++;
      }
      await o.dir.markMoveFileWritten(m.id, f.folder, f.name);
    }
  }
}
