// Keeps qmail's files in step with the directory (the source of truth), finds drift and repairs it.
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { asciiLower, tempError } from '../core/index.js';
import { Control } from '../control/index.js';
import { cdbEntries, cdbGet, writeCdbAtomic } from '../cdb/index.js';
import { assignRecords, parseAssign } from '../users/index.js';
import {
  assignLine,
  dotQmailDefault,
  editAssign,
  heldAssignLine,
  heldFiles,
  editMap,
  editRcptHosts,
  listEntries,
  writeAtomic,
} from './files.js';
import type { HeldRecord } from './held.js';
import type { DeliveryAccount, Directory, Domain, Mailbox } from './types.js';

const amRoot = (): boolean => process.getuid?.() === 0;

function mkdirOwned(path: string, mode: number, acct: DeliveryAccount): void {
  if (existsSync(path)) return;
  mkdirSync(path, { mode });
  if (amRoot()) chownSync(path, acct.uid, acct.gid);
}

function wrap<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw tempError(`unable to ${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  }
}

/** What must change in the shared files: domains to have, managed domains to drop. */
interface Edit {
  readonly have: readonly Domain[];
  readonly drop: readonly string[];
  /** Held domains to have: rcpthosts, `name:name` in virtualdomains, users/assign to the held home. */
  readonly held?: readonly HeldRecord[];
}

/**
 * users/cdb from the users/assign text just written (one parse, as qmail-newu would make it): users' assignRecords
 * (C.2: key `!local[\0]`, value user\0uid\0gid\0home\0dash\0ext, then `""` → wildchars), kept as Latin-1
 * strings that buildCdb copies straight into the file: no Buffer per field, 200,000 of them at 100,000 domains.
 */
function compileAssign(root: string, text: string): void {
  const records = assignRecords(parseAssign(text));
  wrap('write users/cdb', () => writeCdbAtomic(join(root, 'users', 'cdb'), records, 0o644));
}

/** morercpthosts.cdb from the morercpthosts text just written, as qmail-newmrh makes it (lowercased keys, empty values). */
function compileMoreRcptHosts(control: Control, text: string): void {
  const records = listEntries(text).map((h): [string, string] => [h, '']);
  wrap('write control/morercpthosts.cdb', () => writeCdbAtomic(control.path('morercpthosts.cdb'), records, 0o644));
}

/**
 * Applies an edit to rcpthosts (+ morercpthosts and its cdb past control/rcpthostsmax entries), virtualdomains,
 * users/assign (+ users/cdb): each file read once, edited in one pass, written atomically. `force` recompiles
 * the cdb files even when their source did not change (repair).
 */
function applyFiles(root: string, e: Edit, force = false): void {
  const control = new Control(root);
  mkdirSync(join(root, 'control'), { recursive: true });
  mkdirSync(join(root, 'users'), { recursive: true });
  const held = e.held ?? [];
  const names = [...e.have.flatMap((d) => [d.name, ...d.aliases]), ...held.map((h) => h.name)];
  const moreOld = control.raw('morercpthosts');
  const rh = editRcptHosts(control.raw('rcpthosts'), moreOld, names, e.drop, control.number('rcpthostsmax').value);
  const accept = (): void => {
    if (rh.morercpthosts !== null)
      wrap('write control/morercpthosts', () => writeAtomic(control.path('morercpthosts'), rh.morercpthosts ?? ''));
    const more = rh.morercpthosts ?? moreOld;
    if (more !== null && (rh.morercpthosts !== null || force || !existsSync(control.path('morercpthosts.cdb'))))
      compileMoreRcptHosts(control, more);
    if (rh.rcpthosts !== null)
      wrap('write control/rcpthosts', () => writeAtomic(control.path('rcpthosts'), rh.rcpthosts ?? ''));
  };
  // Acceptance goes first when domains leave (no new mail for them), last when they come (routed before accepted).
  if (e.drop.length > 0) accept();
  const vset = new Map<string, string>();
  for (const d of e.have) {
    vset.set(d.name, d.name);
    for (const a of d.aliases) vset.set(a, d.name);
  }
  for (const h of held) vset.set(h.name, h.name);
  const vd = editMap(control.raw('virtualdomains'), vset, e.drop);
  if (vd !== null) wrap('write control/virtualdomains', () => writeAtomic(control.path('virtualdomains'), vd));
  const assignPath = join(root, 'users', 'assign');
  const oldAssign = existsSync(assignPath) ? readFileSync(assignPath, 'latin1') : null;
  const as = editAssign(
    oldAssign,
    [...e.have.map((d) => assignLine(root, d)), ...held.map((h) => heldAssignLine(root, h))],
    e.drop,
  );
  if (as !== null) wrap('write users/assign', () => writeAtomic(assignPath, as));
  const assign = as ?? oldAssign;
  if (assign !== null && (force || as !== null || !existsSync(join(root, 'users', 'cdb')))) compileAssign(root, assign);
  if (e.drop.length === 0) accept();
}

/** Creates domains/<dom>/ with its .qmail-default (rewritten when the policy changed). */
function applyDomainDir(root: string, d: Domain): void {
  const dir = join(root, 'domains', d.name);
  wrap(`create ${dir}`, () => {
    mkdirSync(join(root, 'domains'), { recursive: true, mode: 0o755 });
    mkdirOwned(dir, 0o755, d.account);
    const path = join(dir, '.qmail-default');
    const want = dotQmailDefault(d);
    const have = existsSync(path) ? readFileSync(path, 'latin1') : null;
    if (have !== want) {
      writeAtomic(path, want, 0o644);
      if (amRoot()) chownSync(path, d.account.uid, d.account.gid);
    }
  });
}

/** A mailbox's home and Maildir (mode 0700, owned by the domain's account). */
export function makeMailboxHome(root: string, d: Domain, m: Pick<Mailbox, 'home'>): void {
  const home = join(root, m.home);
  wrap(`create ${home}/Maildir`, () => {
    mkdirOwned(home, 0o700, d.account);
    mkdirOwned(join(home, 'Maildir'), 0o700, d.account);
    for (const s of ['cur', 'new', 'tmp']) mkdirOwned(join(home, 'Maildir', s), 0o700, d.account);
  });
}

/** After a domain is added or changed in the directory: its lines, users/cdb, its directory. */
export function syncDomain(root: string, d: Domain): void {
  applyFiles(root, { have: [d], drop: [] });
  applyDomainDir(root, d);
}

/** After a domain was deleted: its lines (and its alias domains') go; with removeFiles its tree too. */
export function unsyncDomain(root: string, names: readonly string[], removeFiles: boolean): void {
  applyFiles(root, { have: [], drop: names });
  const [name] = names;
  if (removeFiles && name !== undefined)
    wrap(`remove domains/${name}`, () => rmSync(join(root, 'domains', name), { recursive: true, force: true }));
}

/**
 * After a held domain is added or changed: its lines (rcpthosts, virtualdomains, users/assign + cdb) and its home
 * as seeds 001/004 make it by hand: RELAYHOST, `.qmail-default` of `./Maildir/`, the Maildir, and HELD (the settings
 * the running quail reads). The home is made before the lines, so mail is never routed to a home that is not there.
 */
export function syncHeld(root: string, h: HeldRecord): void {
  const home = join(root, 'held', h.name);
  wrap(`create ${home}`, () => {
    mkdirSync(join(root, 'held'), { recursive: true, mode: 0o755 });
    mkdirOwned(home, 0o755, h.account);
    for (const [name, text] of heldFiles(h)) {
      const path = join(home, name);
      if (existsSync(path) && readFileSync(path, 'latin1') === text) continue;
      writeAtomic(path, text, 0o644);
      if (amRoot()) chownSync(path, h.account.uid, h.account.gid);
    }
    mkdirOwned(join(home, 'Maildir'), 0o700, h.account);
    for (const s of ['cur', 'new', 'tmp']) mkdirOwned(join(home, 'Maildir', s), 0o700, h.account);
    // CRAM-MD5's secret: readable by the account only (the ODMR process runs as it).
    const secret = join(home, 'ATRNSECRET');
    if (h.atrnSecret === '') rmSync(secret, { force: true });
    else if (!existsSync(secret) || readFileSync(secret, 'utf8') !== `${h.atrnSecret}\n`) {
      writeAtomic(secret, `${h.atrnSecret}\n`, 0o600);
      if (amRoot()) chownSync(secret, h.account.uid, h.account.gid);
    }
  });
  applyFiles(root, { have: [], drop: [], held: [h] });
}

/** After a held domain was removed: its lines go; its home (with mail not yet pushed) only with removeFiles. */
export function unsyncHeld(root: string, name: string, removeFiles: boolean): void {
  applyFiles(root, { have: [], drop: [name] });
  if (removeFiles)
    wrap(`remove held/${name}`, () => rmSync(join(root, 'held', name), { recursive: true, force: true }));
}

/** What a check or repair reads of the directory (src/offices passes a view that leaves out refused rows). */
export type DriftSource = Pick<Directory, 'listDomains' | 'listMailboxes' | 'listHeld'>;

export interface Drift {
  readonly domain: string;
  readonly path: string;
  readonly problem: string;
}

/** Domains that users/assign says are ours (home ROOT/domains/<name>) but the directory does not have. */
function staleManaged(root: string, known: ReadonlySet<string>): string[] {
  const path = join(root, 'users', 'assign');
  if (!existsSync(path)) return [];
  const out: string[] = [];
  for (const l of readFileSync(path, 'latin1').split('\n')) {
    const m = /^\+([^:]+)-:[^:]*:\d+:\d+:([^:]*):/.exec(l);
    if (m && m[1] !== undefined && m[2] === `${root}/domains/${m[1]}` && !known.has(asciiLower(m[1])))
      out.push(asciiLower(m[1]));
  }
  return out;
}

/** A cdb file's bytes (null when missing) and a safe probe: a damaged file answers "absent". */
function cdbProbe(bytes: Buffer | null): (key: string) => Buffer | undefined {
  return (key) => {
    if (bytes === null) return undefined;
    try {
      return cdbGet(bytes, Buffer.from(key, 'latin1'));
    } catch {
      return undefined;
    }
  };
}

/** The domain's users/cdb value as qmail-newu writes it from its assign line: user, uid, gid, home, dash, ext. */
const assignValue = (root: string, d: Domain): string =>
  [d.account.user, String(d.account.uid), String(d.account.gid), `${root}/domains/${d.name}`, '-', ''].join('\0');

/** morercpthosts.cdb says something else than morercpthosts (both read already): the first key that differs. */
function mrhMismatch(more: readonly string[], cdb: Buffer | null): string | null {
  if (cdb === null) return more[0] ?? null;
  const probe = cdbProbe(cdb);
  for (const h of more) if (probe(h) === undefined) return h;
  const want = new Set(more);
  try {
    for (const [k] of cdbEntries(cdb)) if (!want.has(k.toString('latin1'))) return k.toString('latin1');
  } catch {
    return '(damaged file)';
  }
  return null;
}

/**
 * Every difference between the directory and qmail's files, the domain trees and the mailboxes' Maildirs. Each
 * file is read once (sets and cdb probes per domain), so a check of 100,000 domains is linear.
 */
export async function checkDrift(
  root: string,
  dir: DriftSource,
  /** After each domain checked: how many of how many (a progress bar on large trees). */
  progress?: (done: number, total: number) => void,
): Promise<Drift[]> {
  const control = new Control(root);
  const domains = await dir.listDomains();
  const rcpt = new Set(listEntries(control.raw('rcpthosts')));
  const moreList = listEntries(control.raw('morercpthosts'));
  const more = new Set(moreList);
  const mrhCdb = control.bytes('morercpthosts.cdb');
  const inMrhCdb = cdbProbe(mrhCdb);
  const vd = control.map('virtualdomains').value;
  const assignPath = join(root, 'users', 'assign');
  const assign = new Set(existsSync(assignPath) ? readFileSync(assignPath, 'latin1').split('\n') : []);
  const usersCdbPath = join(root, 'users', 'cdb');
  const inUsersCdb = cdbProbe(existsSync(usersCdbPath) ? readFileSync(usersCdbPath) : null);
  const out: Drift[] = [];
  const mrhBad = control.raw('morercpthosts') === null ? null : mrhMismatch(moreList, mrhCdb);
  if (mrhBad !== null)
    out.push({
      domain: mrhBad,
      path: control.path('morercpthosts.cdb'),
      problem: `does not match morercpthosts (${mrhBad}); run quail newmrh`,
    });
  for (const d of domains) {
    for (const n of [d.name, ...d.aliases]) {
      if (!rcpt.has(n) && !more.has(n))
        out.push({
          domain: d.name,
          path: control.path('rcpthosts'),
          problem: `${n} is missing (from rcpthosts and morercpthosts)`,
        });
      else if (!rcpt.has(n) && mrhBad === null && inMrhCdb(n) === undefined) {
        out.push({
          domain: d.name,
          path: control.path('morercpthosts.cdb'),
          problem: `${n} is missing (run quail newmrh)`,
        });
      }
      const v = vd?.get(n);
      if (v?.value !== d.name)
        out.push({ domain: d.name, path: control.path('virtualdomains'), problem: `${n}:${d.name} is missing` });
    }
    const line = assignLine(root, d);
    if (!assign.has(line)) out.push({ domain: d.name, path: assignPath, problem: `${line} is missing` });
    else if (inUsersCdb(`!${asciiLower(d.name)}-`)?.toString('latin1') !== assignValue(root, d)) {
      out.push({ domain: d.name, path: usersCdbPath, problem: `out of date for ${d.name} (run newu)` });
    }
    const qd = join(root, 'domains', d.name, '.qmail-default');
    const text = existsSync(qd) ? readFileSync(qd, 'latin1') : null;
    if (text !== dotQmailDefault(d))
      out.push({ domain: d.name, path: qd, problem: text === null ? 'missing' : "does not hold the domain's policy" });
    for (const m of await dir.listMailboxes(d.name)) {
      const md = join(root, m.home, 'Maildir');
      const ok = ['cur', 'new', 'tmp'].every((s) => existsSync(join(md, s)) && statSync(join(md, s)).isDirectory());
      if (!ok) out.push({ domain: d.name, path: md, problem: `Maildir of ${m.local}@${d.name} is missing` });
    }
    progress?.(domains.indexOf(d) + 1, domains.length);
  }
  for (const h of await dir.listHeld()) {
    const line = heldAssignLine(root, h);
    if (!assign.has(line)) out.push({ domain: h.name, path: assignPath, problem: `${line} is missing` });
    if (!rcpt.has(h.name) && !more.has(h.name))
      out.push({ domain: h.name, path: control.path('rcpthosts'), problem: `${h.name} is missing` });
    if (vd?.get(h.name)?.value !== h.name)
      out.push({ domain: h.name, path: control.path('virtualdomains'), problem: `${h.name}:${h.name} is missing` });
    for (const [name, text] of heldFiles(h)) {
      const path = join(root, 'held', h.name, name);
      if (!existsSync(path) || readFileSync(path, 'latin1') !== text)
        out.push({ domain: h.name, path, problem: existsSync(path) ? 'differs from the directory' : 'missing' });
    }
  }
  const known = new Set(domains.flatMap((d) => [d.name, ...d.aliases]));
  for (const s of staleManaged(root, known)) {
    out.push({ domain: s, path: assignPath, problem: `${s} is not in the directory but still routed to domains/${s}` });
  }
  return out;
}

/** Makes the files say what the directory says; stale managed domains lose their lines (their mail stays). */
export async function repairDrift(root: string, dir: DriftSource): Promise<void> {
  const domains = await dir.listDomains();
  const known = new Set(domains.flatMap((d) => [d.name, ...d.aliases]));
  applyFiles(root, { have: domains, drop: staleManaged(root, known) }, true);
  for (const d of domains) {
    applyDomainDir(root, d);
    for (const m of await dir.listMailboxes(d.name)) makeMailboxHome(root, d, m);
  }
  for (const h of await dir.listHeld()) syncHeld(root, h);
}
