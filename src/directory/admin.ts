// Administrative operations: each changes the directory first, then brings qmail's files and the tree in step.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempError } from '../core/index.js';
import { Control } from '../control/index.js';
import { systemPasswd } from '../users/index.js';
import { aliasDomainName, DirectoryError, domainName, localPart } from './names.js';
import { hashPassword } from './password.js';
import type { HeldRecord, NewHeld } from './held.js';
import { makeMailboxHome, syncDomain, syncHeld, unsyncDomain, unsyncHeld } from './sync.js';
import type { DeliveryAccount, Directory, Domain, DomainPatch, Mailbox, MailboxFlag, NewDomain } from './types.js';

/** The account named by `name`, else control/quailuser, else the invoking user; never root. */
export function deliveryAccount(root: string, name?: string, passwdFile?: string): DeliveryAccount {
  const want = name ?? new Control(root).single('quailuser').value ?? null;
  if (want === null) {
    const uid = process.getuid?.() ?? -1;
    if (uid === 0)
      throw new DirectoryError(
        'control/quailuser is missing and quail runs as root: run quail init first, or give --account',
      );
    const gid = process.getgid?.() ?? uid;
    return { user: process.env['USER'] ?? String(uid), uid, gid };
  }
  const e = systemPasswd(passwdFile === undefined ? {} : { passwdFile }).byName(want);
  if (!e)
    throw new DirectoryError(`no account named ${want} in the passwd file; create it or choose another with --account`);
  if (e.uid === 0) throw new DirectoryError(`mail may not be delivered as root; choose another account than ${want}`);
  return { user: e.name, uid: e.uid, gid: e.gid };
}

/** Accounts below this uid are the system's (login.defs UID_MIN); of them only control/quailuser's may get mail. */
const FIRST_USER_UID = 1000;

/**
 * Why an account read from a directory shared with other servers (src/offices) may not own files or receive
 * deliveries on this host, or undefined: it must be the account of that name in this host's passwd with the same
 * uid and gid (as deliveryAccount resolves `--account`), never uid or gid 0, and no system account (uid below 1000)
 * but control/quailuser's.
 */
export function foreignAccountProblem(root: string, a: DeliveryAccount, passwdFile?: string): string | undefined {
  const show = `the account ${JSON.stringify(a.user)} (uid ${a.uid}, gid ${a.gid})`;
  if (!Number.isSafeInteger(a.uid) || !Number.isSafeInteger(a.gid) || a.uid <= 0 || a.gid <= 0)
    return `${show} is root or not an account`;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(a.user)) return `${show} is not an account name`;
  let e;
  try {
    e = systemPasswd(passwdFile === undefined ? {} : { passwdFile }).byName(a.user);
  } catch {
    return `${show} cannot be looked up (the passwd file is unreadable)`;
  }
  if (!e || e.uid !== a.uid || e.gid !== a.gid) return `${show} is not that account in this host's passwd`;
  if (a.uid < FIRST_USER_UID && a.user !== new Control(root).single('quailuser').value)
    return `${show} is a system account (uid below ${FIRST_USER_UID}) other than control/quailuser's`;
  return undefined;
}

export interface Ctx {
  readonly root: string;
  readonly dir: Directory;
}

/** vadddomain: the directory row, then rcpthosts, virtualdomains, users/assign, users/cdb, domains/<dom>/. */
export async function createDomain(ctx: Ctx, d: NewDomain): Promise<Domain> {
  const dom = await ctx.dir.addDomain(d);
  syncDomain(ctx.root, dom);
  return dom;
}

export async function changeDomain(ctx: Ctx, name: string, patch: DomainPatch): Promise<Domain> {
  const dom = await ctx.dir.updateDomain(domainName(name), patch);
  syncDomain(ctx.root, dom);
  return dom;
}

/** vdeldomain: the files first (so no new mail is accepted), then the directory; removeFiles drops the tree. */
export async function removeDomain(ctx: Ctx, name: string, removeFiles: boolean): Promise<void> {
  const n = domainName(name);
  const dom = await ctx.dir.getDomain(n);
  if (!dom) throw new DirectoryError(`no domain ${n} in the directory`);
  unsyncDomain(ctx.root, [dom.name, ...dom.aliases], removeFiles);
  await ctx.dir.deleteDomain(n);
}

export async function addAliasDomain(ctx: Ctx, alias: string, target: string): Promise<Domain> {
  await ctx.dir.addAliasDomain(alias, domainName(target));
  const dom = await ctx.dir.getDomain(domainName(target));
  if (!dom) throw tempError(`domain ${target} vanished while adding an alias to it`);
  syncDomain(ctx.root, dom);
  return dom;
}

export async function removeAliasDomain(ctx: Ctx, alias: string): Promise<void> {
  const a = aliasDomainName(alias);
  if (!(await ctx.dir.deleteAliasDomain(a))) throw new DirectoryError(`${a} is not an alias domain`);
  unsyncDomain(ctx.root, [a], false);
}

export interface NewUser {
  readonly address: string;
  readonly password: string | null;
  readonly realName?: string;
  readonly quotaBytes?: number | null;
  readonly quotaMessages?: number | null;
  readonly flags?: readonly MailboxFlag[];
  /** Home office (issue 16); default: the only office, or none. */
  readonly office?: string;
}

/** `user@domain` → [local, domain] (validated). */
export function parseAddress(address: string): [string, string] {
  const at = address.lastIndexOf('@');
  if (at <= 0) throw new DirectoryError(`${JSON.stringify(address)} is not user@domain`);
  return [localPart(address.slice(0, at)), domainName(address.slice(at + 1))];
}

/** vadduser: the row (password hashed with scrypt), then domains/<dom>/<user>/Maildir. */
export async function createMailbox(ctx: Ctx, u: NewUser): Promise<Mailbox> {
  const [local, domain] = parseAddress(u.address);
  const dom = await ctx.dir.getDomain(domain);
  if (!dom) throw new DirectoryError(`no domain ${domain} in the directory; add it with quail domain add ${domain}`);
  const m = await ctx.dir.addMailbox({
    domain,
    local,
    passwordHash: u.password === null ? '' : await hashPassword(u.password),
    ...(u.realName === undefined ? {} : { realName: u.realName }),
    ...(u.quotaBytes === undefined ? {} : { quotaBytes: u.quotaBytes }),
    ...(u.quotaMessages === undefined ? {} : { quotaMessages: u.quotaMessages }),
    ...(u.flags === undefined ? {} : { flags: u.flags }),
    ...(u.office === undefined ? {} : { office: u.office }),
  });
  makeMailboxHome(ctx.root, dom, m);
  return m;
}

/** vdeluser: the row, then (with removeFiles) the home with its mail. */
export async function removeMailbox(ctx: Ctx, address: string, removeFiles: boolean): Promise<void> {
  const [local, domain] = parseAddress(address);
  const m = await ctx.dir.getMailbox(domain, local);
  if (!m) throw new DirectoryError(`no mailbox ${local}@${domain}`);
  await ctx.dir.deleteMailbox(domain, local);
  if (removeFiles) rmSync(join(ctx.root, m.home), { recursive: true, force: true });
}

/** quail held add: the record, then the held home (RELAYHOST, .qmail-default, Maildir, HELD) and the lines. */
export async function holdDomain(ctx: Ctx, h: NewHeld, replace: boolean): Promise<HeldRecord> {
  const rec = await ctx.dir.putHeld(h, replace);
  syncHeld(ctx.root, rec);
  return rec;
}

/** quail held remove: the lines first (no new mail is accepted or held), then the record; the home with removeFiles. */
export async function unholdDomain(ctx: Ctx, name: string, removeFiles: boolean): Promise<void> {
  const n = domainName(name);
  if ((await ctx.dir.getHeld(n)) === null) throw new DirectoryError(`${n} is not a held domain in the directory`);
  unsyncHeld(ctx.root, n, removeFiles);
  await ctx.dir.deleteHeld(n);
}
