// Administering lists: the directory rows first, then the `.qmail-LIST` files and the list's own directory.
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import {
  DirectoryError,
  domainName,
  listName,
  memberAddress,
  type Directory,
  type Domain,
  type ListMember,
  type ListOptions,
  type ListRole,
  type MailingList,
} from '../directory/index.js';

export interface ListCtx {
  readonly root: string;
  readonly dir: Directory;
}

/**
 * Who asks: the system administrator (the CLI as root) or a login (a mailbox address, as the web knows it) with its
 * roles as src/access reads them from the directory (its Principal fits this type): a system administrator, or the
 * domains it administers.
 */
export type Actor =
  | { readonly kind: 'system' }
  | {
      readonly kind: 'login';
      readonly login: string;
      readonly systemAdmin?: boolean;
      readonly domains?: readonly string[];
    };

/** Does the actor administer the list's domain (or everything)? */
export const administers = (actor: Actor, domain: string): boolean =>
  actor.kind === 'system' || actor.systemAdmin === true || (actor.domains ?? []).includes(domain);

/** The mark that makes a `.qmail-LIST` file quail's own (rewritten and removed with the list). */
const MARK = '# quail list';

/** `.qmail-` file names turn `.` into `:` (qmail-local, D.3). */
const dotName = (local: string): string => local.replace(/\./g, ':');

/** The list's own directory: held posts, the archive, the post counter (owned by the domain's account). */
export const listHome = (root: string, domain: string, local: string): string =>
  join(root, 'domains', domain, '.lists', local);

/** `team@example.com` → the list's domain and name (validated). */
export function parseListAddress(address: string): { domain: string; local: string } {
  const at = address.lastIndexOf('@');
  if (at <= 0) throw new DirectoryError(`${JSON.stringify(address)} is not a list address (name@domain)`);
  return { local: listName(address.slice(0, at)), domain: domainName(address.slice(at + 1)) };
}

const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The two `.qmail` files of a list (ezmlm-make writes the same pair): posts, and every `LIST-...` address. */
function listDotQmail(domain: string, local: string): { post: string; manage: string } {
  return {
    post: `${MARK} ${local}@${domain}: posts\n|quail list-post ${sq(domain)} ${sq(local)}\n`,
    manage: `${MARK} ${local}@${domain}: subscribe, confirm, help, bounces, moderation\n|quail list-manage ${sq(domain)} ${sq(local)}\n`,
  };
}

function writeOwned(path: string, text: string, d: Domain): void {
  writeFileSync(`${path}.tmp`, text, { mode: 0o644 });
  if (process.getuid?.() === 0) chownSync(`${path}.tmp`, d.account.uid, d.account.gid);
  renameSync(`${path}.tmp`, path);
}

function mkdirOwned(path: string, d: Domain): void {
  if (!existsSync(path)) mkdirSync(path, { mode: 0o700 });
  if (process.getuid?.() === 0) chownSync(path, d.account.uid, d.account.gid);
}

/** Writes (or rewrites) the list's `.qmail` files and its directory; `quail list create` and repairs call it. */
function syncListFiles(root: string, d: Domain, local: string): void {
  const base = join(root, 'domains', d.name);
  const files = listDotQmail(d.name, local);
  writeOwned(join(base, `.qmail-${dotName(local)}`), files.post, d);
  writeOwned(join(base, `.qmail-${dotName(local)}-default`), files.manage, d);
  mkdirOwned(join(base, '.lists'), d);
  const home = listHome(root, d.name, local);
  mkdirOwned(home, d);
  for (const sub of ['archive', 'mod']) mkdirOwned(join(home, sub), d);
}

/** A list's file or directory that is missing or says something else than the directory (`quail directory check`). */
export interface ListDrift {
  readonly domain: string;
  readonly path: string;
  readonly problem: string;
}

/** Every list's `.qmail` pair and directory, compared with what `createList` writes. */
export async function listFileDrift(ctx: ListCtx): Promise<ListDrift[]> {
  const out: ListDrift[] = [];
  for (const l of await ctx.dir.lists.all()) {
    const base = join(ctx.root, 'domains', l.domain);
    const want = listDotQmail(l.domain, l.local);
    for (const [f, text] of [
      [`.qmail-${dotName(l.local)}`, want.post],
      [`.qmail-${dotName(l.local)}-default`, want.manage],
    ] as const) {
      const path = join(base, f);
      const have = existsSync(path) ? readFileSync(path, 'latin1') : null;
      if (have !== text)
        out.push({
          domain: l.domain,
          path,
          problem: have === null ? `missing (list ${l.local}@${l.domain})` : `is not list ${l.local}@${l.domain}'s`,
        });
    }
    const home = listHome(ctx.root, l.domain, l.local);
    for (const sub of ['archive', 'mod'])
      if (!existsSync(join(home, sub)))
        out.push({ domain: l.domain, path: join(home, sub), problem: `missing (list ${l.local}@${l.domain})` });
  }
  return out;
}

/** Rewrites every list's files (after listFileDrift found some wrong): the directory is the truth. */
export async function repairListFiles(ctx: ListCtx): Promise<void> {
  for (const l of await ctx.dir.lists.all()) {
    const d = await ctx.dir.getDomain(l.domain);
    if (d) syncListFiles(ctx.root, d, l.local);
  }
}

/** A `.qmail-NAME` file that is not a list's: an address of the domain that a list must not take over. */
function foreignDotQmail(path: string): boolean {
  if (!existsSync(path)) return false;
  return !readFileSync(path, 'latin1').startsWith(MARK);
}

export interface NewList {
  readonly address: string;
  /** Logins (mailbox addresses) who manage the list. */
  readonly owners?: readonly string[];
  readonly moderators?: readonly string[];
  readonly options?: Partial<ListOptions>;
}

/**
 * Creates a list: refused when its addresses are taken in the domain (a mailbox or an alias `NAME` or `NAME-...`,
 * another list's, a `.qmail-NAME` of someone else, a mailbox that owns `NAME` as its extension); then the row, its
 * people, its files.
 */
export async function createList(ctx: ListCtx, n: NewList): Promise<MailingList> {
  const { domain, local } = parseListAddress(n.address);
  const d = await ctx.dir.getDomain(domain);
  if (!d) {
    const r = await ctx.dir.resolveDomain(domain);
    throw new DirectoryError(
      r ? `${domain} is an alias domain of ${r.name}: create the list there` : `no domain ${domain} in the directory`,
    );
  }
  // The domain's mailboxes and aliases (`local`, `local-...`, the mailbox owning `local` as its extension) are
  // checked by the directory's lists.create, in the transaction that adds the row (src/directory/lists.ts).
  // Another list's addresses: `team-subscribe` would take team's subscribe address, and `team` would sit under
  // a list `team-x`'s name.
  for (const other of await ctx.dir.lists.all(domain)) {
    if (local.startsWith(`${other.local}-`) || other.local.startsWith(`${local}-`))
      throw new DirectoryError(
        `${local}@${domain} and the list ${other.local}@${domain} would share addresses ` +
          `(${other.local.length < local.length ? other.local : local}-...): choose another name`,
      );
  }
  const base = join(ctx.root, 'domains', domain);
  for (const f of [`.qmail-${dotName(local)}`, `.qmail-${dotName(local)}-default`])
    if (foreignDotQmail(join(base, f))) throw new DirectoryError(`${join(base, f)} exists and is not a list's`);
  const owners = (n.owners ?? []).map(memberAddress);
  const moderators = (n.moderators ?? []).map(memberAddress);
  const list = await ctx.dir.lists.create(domain, local, randomBytes(24).toString('hex'), n.options);
  for (const o of owners) await ctx.dir.lists.addMember(domain, local, 'owner', o);
  for (const m of moderators) await ctx.dir.lists.addMember(domain, local, 'moderator', m);
  syncListFiles(ctx.root, d, local);
  return list;
}

/** Deletes a list: its `.qmail` files first (no new mail reaches it), then the rows, then (unless kept) its files. */
export async function deleteList(ctx: ListCtx, address: string, keepFiles = false): Promise<void> {
  const { domain, local } = parseListAddress(address);
  if (!(await ctx.dir.lists.get(domain, local))) throw new DirectoryError(`no list ${local}@${domain}`);
  const base = join(ctx.root, 'domains', domain);
  for (const f of [`.qmail-${dotName(local)}`, `.qmail-${dotName(local)}-default`])
    if (!foreignDotQmail(join(base, f))) rmSync(join(base, f), { force: true });
  await ctx.dir.lists.remove(domain, local);
  if (!keepFiles) rmSync(listHome(ctx.root, domain, local), { recursive: true, force: true });
}

/** The list named by `address`, or a DirectoryError. */
export async function getList(ctx: ListCtx, address: string): Promise<MailingList> {
  const { domain, local } = parseListAddress(address);
  const l = await ctx.dir.lists.get(domain, local);
  if (!l) throw new DirectoryError(`no list ${local}@${domain}; see quail list list`);
  return l;
}

/**
 * May `actor` manage the list (settings, people)? The system administrator always; an administrator of the list's
 * domain (issue 19's roles, as src/access reads them); a login when it is one of the list's owners. src/access asks
 * this before the web's list changes, and the functions below ask it again.
 */
export async function mayManageList(ctx: ListCtx, list: MailingList, actor: Actor): Promise<boolean> {
  if (actor.kind === 'system' || administers(actor, list.domain)) return true;
  return (await ctx.dir.lists.getMember(list.domain, list.local, 'owner', actor.login)) !== null;
}

async function must(ctx: ListCtx, list: MailingList, actor: Actor): Promise<void> {
  if (!(await mayManageList(ctx, list, actor)))
    throw new DirectoryError(
      `${actor.kind === 'login' ? actor.login : 'you'} may not manage ${list.local}@${list.domain}`,
    );
}

/** Adds people to a list as its manager (no confirmation: the owner vouches). Returns those that were new. */
export async function addMembers(
  ctx: ListCtx,
  actor: Actor,
  address: string,
  role: ListRole,
  people: readonly string[],
): Promise<string[]> {
  const list = await getList(ctx, address);
  await must(ctx, list, actor);
  const clean = people.map(memberAddress);
  const added: string[] = [];
  for (const p of clean) if (await ctx.dir.lists.addMember(list.domain, list.local, role, p)) added.push(p);
  return added;
}

/** Removes people; returns those that were there. */
export async function removeMembers(
  ctx: ListCtx,
  actor: Actor,
  address: string,
  role: ListRole,
  people: readonly string[],
): Promise<string[]> {
  const list = await getList(ctx, address);
  await must(ctx, list, actor);
  const gone: string[] = [];
  for (const p of people)
    if (await ctx.dir.lists.removeMember(list.domain, list.local, role, p)) gone.push(p.toLowerCase());
  return gone;
}

export async function listMembers(ctx: ListCtx, actor: Actor, address: string, role: ListRole): Promise<ListMember[]> {
  const list = await getList(ctx, address);
  await must(ctx, list, actor);
  return ctx.dir.lists.members(list.domain, list.local, role);
}

export async function setListOptions(
  ctx: ListCtx,
  actor: Actor,
  address: string,
  patch: Partial<ListOptions>,
): Promise<MailingList> {
  const list = await getList(ctx, address);
  await must(ctx, list, actor);
  return ctx.dir.lists.update(list.domain, list.local, patch);
}
