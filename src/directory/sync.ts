// Keeps qmail's files in step with the directory (the source of truth), finds drift and repairs it.
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { asciiLower, tempError } from '../address/index.js';
import { Control } from '../control/index.js';
import { cdbAssignment, newu } from '../users/index.js';
import { assignLine, dotQmailDefault, editAssign, editList, editMap, writeAtomic } from './files.js';
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
}

/** Applies an edit to rcpthosts, virtualdomains, users/assign (+ users/cdb): each file written atomically. */
function applyFiles(root: string, e: Edit, forceNewu = false): void {
  const control = new Control(root);
  mkdirSync(join(root, 'control'), { recursive: true });
  mkdirSync(join(root, 'users'), { recursive: true });
  const names = e.have.flatMap((d) => [d.name, ...d.aliases]);
  const more = new Set((control.list('morercpthosts').value ?? []).map(asciiLower));
  const rcpt = editList(control.raw('rcpthosts'), names.filter((n) => !more.has(n)), e.drop);
  if (rcpt !== null) wrap('write control/rcpthosts', () => writeAtomic(control.path('rcpthosts'), rcpt));
  const vset = new Map<string, string>();
  for (const d of e.have) {
    vset.set(d.name, d.name);
    for (const a of d.aliases) vset.set(a, d.name);
  }
  const vd = editMap(control.raw('virtualdomains'), vset, e.drop);
  if (vd !== null) wrap('write control/virtualdomains', () => writeAtomic(control.path('virtualdomains'), vd));
  const assignPath = join(root, 'users', 'assign');
  const oldAssign = existsSync(assignPath) ? readFileSync(assignPath, 'latin1') : null;
  const as = editAssign(oldAssign, e.have.map((d) => assignLine(root, d)), e.drop);
  if (as !== null) wrap('write users/assign', () => writeAtomic(assignPath, as));
  if (forceNewu || as !== null || !existsSync(join(root, 'users', 'cdb'))) newu(root);
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
  if (removeFiles && name !== undefined) wrap(`remove domains/${name}`, () => rmSync(join(root, 'domains', name), { recursive: true, force: true }));
}

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
    if (m && m[1] !== undefined && m[2] === `${root}/domains/${m[1]}` && !known.has(asciiLower(m[1]))) out.push(asciiLower(m[1]));
  }
  return out;
}

/** Every difference between the directory and qmail's files, the domain trees and the mailboxes' Maildirs. */
export async function checkDrift(root: string, dir: Directory): Promise<Drift[]> {
  const control = new Control(root);
  const domains = await dir.listDomains();
  const rcpt = new Set([...(control.list('rcpthosts').value ?? []), ...(control.list('morercpthosts').value ?? [])].map(asciiLower));
  const vd = control.map('virtualdomains').value;
  const assign = existsSync(join(root, 'users', 'assign')) ? readFileSync(join(root, 'users', 'assign'), 'latin1').split('\n') : [];
  const out: Drift[] = [];
  for (const d of domains) {
    for (const n of [d.name, ...d.aliases]) {
      if (!rcpt.has(n)) out.push({ domain: d.name, path: control.path('rcpthosts'), problem: `${n} is missing` });
      const v = vd?.get(n);
      if (v?.value !== d.name) out.push({ domain: d.name, path: control.path('virtualdomains'), problem: `${n}:${d.name} is missing` });
    }
    const line = assignLine(root, d);
    if (!assign.includes(line)) out.push({ domain: d.name, path: join(root, 'users', 'assign'), problem: `${line} is missing` });
    else {
      const a = cdbAssignment(root, `${d.name}-x`);
      if (a?.home !== `${root}/domains/${d.name}` || a.uid !== d.account.uid) {
        out.push({ domain: d.name, path: join(root, 'users', 'cdb'), problem: `out of date for ${d.name} (run newu)` });
      }
    }
    const qd = join(root, 'domains', d.name, '.qmail-default');
    const text = existsSync(qd) ? readFileSync(qd, 'latin1') : null;
    if (text !== dotQmailDefault(d)) out.push({ domain: d.name, path: qd, problem: text === null ? 'missing' : 'does not hold the domain\'s policy' });
    for (const m of await dir.listMailboxes(d.name)) {
      const md = join(root, m.home, 'Maildir');
      const ok = ['cur', 'new', 'tmp'].every((s) => existsSync(join(md, s)) && statSync(join(md, s)).isDirectory());
      if (!ok) out.push({ domain: d.name, path: md, problem: `Maildir of ${m.local}@${d.name} is missing` });
    }
  }
  const known = new Set(domains.flatMap((d) => [d.name, ...d.aliases]));
  for (const s of staleManaged(root, known)) {
    out.push({ domain: s, path: join(root, 'users', 'assign'), problem: `${s} is not in the directory but still routed to domains/${s}` });
  }
  return out;
}

/** Makes the files say what the directory says; stale managed domains lose their lines (their mail stays). */
export async function repairDrift(root: string, dir: Directory): Promise<void> {
  const domains = await dir.listDomains();
  const known = new Set(domains.flatMap((d) => [d.name, ...d.aliases]));
  applyFiles(root, { have: domains, drop: staleManaged(root, known) }, true);
  for (const d of domains) {
    applyDomainDir(root, d);
    for (const m of await dir.listMailboxes(d.name)) makeMailboxHome(root, d, m);
  }
}
