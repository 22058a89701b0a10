// Mailing lists in the web admin: the views and changes of the list pages, each decided by policy.ts's `refusal`
// (scopes `list` and `list-create`), then done by src/lists' own functions — the ones `quail list` calls.
import { DirectoryError, LIST_ROLES, type ListOptions, type ListRole, type MailingList } from '../directory/index.js';

export type { ListOptions };
import {
  addMembers,
  archiveIndex,
  archiveMessage,
  createList,
  decideHeld,
  deleteList,
  heldPosts,
  parseListAddress,
  removeMembers,
  setListOptions,
  type ArchiveEntry,
  type HeldPost,
  type ListCtx,
} from '../lists/index.js';
import { authorize, refusal, type Principal } from './policy.js';

export type ListView =
  | { readonly view: 'lists' }
  | { readonly view: 'list'; readonly address: string }
  | { readonly view: 'post'; readonly address: string; readonly n: number };

export interface ListSummary {
  readonly address: string;
  readonly description: string;
  /** What the viewer is on it: `administrator` (of its domain), `owner`, `moderator`, `subscriber`. */
  readonly roles: readonly string[];
}

export interface ListMemberRow {
  readonly address: string;
  readonly bounces: number;
}

export type ListViewData =
  | {
      readonly view: 'lists';
      readonly lists: readonly ListSummary[];
      /** Domains the viewer may create lists in, and (for their administrators) whether users may too. */
      readonly domains: ReadonlyArray<{
        readonly domain: string;
        readonly admin: boolean;
        readonly usersCreate: boolean;
      }>;
    }
  | {
      readonly view: 'list';
      readonly address: string;
      readonly options: ListOptions;
      readonly may: { readonly manage: boolean; readonly moderate: boolean; readonly read: boolean };
      /** Empty unless the viewer may manage the list. */
      readonly people: Readonly<Record<ListRole, readonly ListMemberRow[]>>;
      readonly held: readonly HeldPost[];
      readonly archive: readonly ArchiveEntry[];
    }
  | {
      readonly view: 'post';
      readonly address: string;
      readonly n: number;
      /** The post's header fields a reader wants (From, To, Cc, Date, Subject), unfolded. */
      readonly fields: ReadonlyArray<readonly [string, string]>;
      /** The body as text (UTF-8; quoted-printable and base64 of a single part decoded). Shown escaped. */
      readonly text: string;
    };

export type ListChange =
  | {
      readonly op: 'list.create';
      readonly address: string;
      readonly owners: readonly string[];
      readonly moderators: readonly string[];
      readonly options: Partial<ListOptions>;
    }
  | { readonly op: 'list.delete'; readonly address: string }
  | { readonly op: 'list.options'; readonly address: string; readonly options: Partial<ListOptions> }
  | {
      readonly op: 'list.members';
      readonly address: string;
      readonly role: ListRole;
      readonly add: readonly string[];
      readonly remove: readonly string[];
    }
  | { readonly op: 'list.moderate'; readonly address: string; readonly id: string; readonly accept: boolean }
  | { readonly op: 'list.users'; readonly domain: string; readonly on: boolean };

const LIST_OPS = ['list.create', 'list.delete', 'list.options', 'list.members', 'list.moderate', 'list.users'];
const LIST_VIEWS = ['lists', 'list', 'post'];

export const isListChange = (c: { readonly op: string }): c is ListChange => LIST_OPS.includes(c.op);
export const isListView = (v: { readonly view: string }): v is ListView => LIST_VIEWS.includes(v.view);

// ---- parsing what the web process sent (it is not trusted) ----

function text(v: unknown, what: string, max = 1024): string {
  if (typeof v !== 'string' || v.length > max)
    throw new DirectoryError(`${what}: expected text of at most ${max} characters`);
  return v;
}

function addresses(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length > 1000) throw new DirectoryError(`${what}: expected at most 1000 addresses`);
  return v.map((x) => text(x, what, 320));
}

function options(v: unknown): Partial<ListOptions> {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ['membersOnly', 'moderated', 'replyToList'] as const) if (o[k] !== undefined) out[k] = o[k] === true;
  for (const k of ['subjectPrefix', 'description'] as const) if (o[k] !== undefined) out[k] = text(o[k], k, 200);
  const m = o['maxBytes'];
  if (m !== undefined) {
    if (m !== null && (typeof m !== 'number' || !Number.isSafeInteger(m) || m <= 0))
      throw new DirectoryError('the size limit: expected a whole number of bytes > 0, or none');
    out['maxBytes'] = m;
  }
  return out;
}

/** A list change from the web process, checked field by field; DirectoryError says what is wrong. */
export function parseListChange(o: Record<string, unknown>): ListChange {
  const address = (): string => text(o['address'], 'list address', 320);
  switch (o['op']) {
    case 'list.create':
      return {
        op: 'list.create',
        address: address(),
        owners: addresses(o['owners'], 'owners'),
        moderators: addresses(o['moderators'], 'moderators'),
        options: options(o['options']),
      };
    case 'list.delete':
      return { op: 'list.delete', address: address() };
    case 'list.options':
      return { op: 'list.options', address: address(), options: options(o['options']) };
    case 'list.members': {
      const role = o['role'];
      if (typeof role !== 'string' || !(LIST_ROLES as readonly string[]).includes(role))
        throw new DirectoryError(`role: expected one of ${LIST_ROLES.join(', ')}`);
      return {
        op: 'list.members',
        address: address(),
        role: role as ListRole,
        add: addresses(o['add'], 'add'),
        remove: addresses(o['remove'], 'remove'),
      };
    }
    case 'list.moderate':
      return { op: 'list.moderate', address: address(), id: text(o['id'], 'id', 64), accept: o['accept'] === true };
    case 'list.users':
      return { op: 'list.users', domain: text(o['domain'], 'domain', 253), on: o['on'] === true };
    default:
      throw new DirectoryError(`unknown change ${JSON.stringify(o['op'])}`);
  }
}

/** A list view from the web process; DirectoryError says what is wrong. */
export function parseListView(o: Record<string, unknown>): ListView {
  if (o['view'] === 'lists') return { view: 'lists' };
  const address = text(o['address'], 'list address', 320);
  if (o['view'] === 'list') return { view: 'list', address };
  if (o['view'] === 'post') {
    const n = o['n'];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1)
      throw new DirectoryError('post: expected a number ≥ 1');
    return { view: 'post', address, n };
  }
  throw new DirectoryError(`unknown view ${JSON.stringify(o['view'])}`);
}

// ---- the decision and the work ----

const addressOf = (l: MailingList): string => `${l.local}@${l.domain}`;

async function has(ctx: ListCtx, l: MailingList, p: Principal, roles: readonly ListRole[]): Promise<boolean> {
  if (p.kind === 'system') return true;
  for (const r of roles) if (await ctx.dir.lists.getMember(l.domain, l.local, r, p.login)) return true;
  return false;
}

const ROLES_OF = {
  owner: ['owner'],
  moderator: ['moderator', 'owner'],
  member: ['subscriber', 'moderator', 'owner'],
} as const satisfies Record<string, readonly ListRole[]>;

async function allowed(ctx: ListCtx, l: MailingList, p: Principal, as: keyof typeof ROLES_OF): Promise<boolean> {
  return refusal(p, { scope: 'list', address: addressOf(l), as, is: await has(ctx, l, p, ROLES_OF[as]) }) === undefined;
}

async function must(ctx: ListCtx, l: MailingList, p: Principal, as: keyof typeof ROLES_OF): Promise<void> {
  authorize(p, { scope: 'list', address: addressOf(l), as, is: await has(ctx, l, p, ROLES_OF[as]) });
}

/**
 * The list named by `address` for principal `p`: who may not see its domain's lists and is not on it is refused
 * (AccessDenied) before being told whether it exists; null (404) for the rest when there is no such list.
 */
async function findList(ctx: ListCtx, p: Principal, address: string): Promise<MailingList | null> {
  const { domain, local } = parseListAddress(address);
  const l = await ctx.dir.lists.get(domain, local);
  if (l) return l;
  authorize(p, { scope: 'list', address: `${local}@${domain}`, as: 'member', is: false });
  return null;
}

/** Decodes a single part's body for reading: quoted-printable and base64; anything else as it is. */
function bodyText(fields: ReadonlyArray<readonly [string, string]>, body: Buffer): string {
  const cte = fields
    .find(([n]) => n === 'content-transfer-encoding')?.[1]
    .trim()
    .toLowerCase();
  if (cte === 'base64') return Buffer.from(body.toString('latin1').replace(/\s+/g, ''), 'base64').toString('utf8');
  if (cte === 'quoted-printable') {
    const bytes = body
      .toString('latin1')
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body.toString('utf8');
}

function splitPost(data: Buffer): { fields: Array<[string, string]>; body: Buffer } {
  const t = data.toString('latin1');
  const end = t.indexOf('\n\n');
  const head = end < 0 ? t : t.slice(0, end);
  const fields: Array<[string, string]> = [];
  for (const line of head.split('\n')) {
    const last = fields.at(-1);
    if (/^[ \t]/.test(line) && last) last[1] += ` ${line.trim()}`;
    else if (line.includes(':'))
      fields.push([line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]);
  }
  return { fields, body: end < 0 ? Buffer.alloc(0) : data.subarray(end + 2) };
}

const SHOWN = ['from', 'to', 'cc', 'date', 'subject'];
const SHOWN_BYTES = 1024 * 1024;

/** The data of a list page, or AccessDenied; null when there is no such list or post. */
export async function listView(ctx: ListCtx, p: Principal, v: ListView): Promise<ListViewData | null> {
  if (v.view === 'lists') {
    const all = p.kind === 'system' || p.systemAdmin;
    const admin = all ? (await ctx.dir.listDomains()).map((d) => d.name) : p.domains;
    const domains = [];
    for (const domain of admin)
      domains.push({ domain, admin: true, usersCreate: await ctx.dir.lists.usersMayCreate(domain) });
    if (p.kind === 'login') {
      const own = p.login.slice(p.login.lastIndexOf('@') + 1);
      if (!admin.includes(own) && (await ctx.dir.lists.usersMayCreate(own)))
        domains.push({ domain: own, admin: false, usersCreate: true });
    }
    const lists: ListSummary[] = [];
    for (const l of await ctx.dir.lists.all()) {
      const roles: string[] = admin.includes(l.domain) ? ['administrator'] : [];
      if (p.kind === 'login')
        for (const r of ['owner', 'moderator', 'subscriber'] as const)
          if (await ctx.dir.lists.getMember(l.domain, l.local, r, p.login)) roles.push(r);
      if (roles.length > 0) lists.push({ address: addressOf(l), description: l.options.description, roles });
    }
    return { view: 'lists', lists, domains };
  }
  const l = await findList(ctx, p, v.address);
  if (!l) return null;
  if (v.view === 'post') {
    await must(ctx, l, p, 'member');
    const data = await archiveMessage(ctx, l, p, v.n);
    if (data === null) return null;
    // a page shows at most the first MiB of a post (it may be 35 MiB): the rest is said, not sent
    const { fields, body } = splitPost(data.subarray(0, SHOWN_BYTES));
    const cut = data.length - SHOWN_BYTES;
    return {
      view: 'post',
      address: addressOf(l),
      n: v.n,
      fields: SHOWN.flatMap((n) => fields.filter(([f]) => f === n)),
      text: bodyText(fields, body) + (cut > 0 ? `\n[… ${cut} more bytes not shown]` : ''),
    };
  }
  const may = {
    manage: await allowed(ctx, l, p, 'owner'),
    moderate: await allowed(ctx, l, p, 'moderator'),
    read: await allowed(ctx, l, p, 'member'),
  };
  if (!may.read) await must(ctx, l, p, 'member'); // not on it, not its administrator: 403
  const people = { subscriber: [], owner: [], moderator: [] } as Record<ListRole, ListMemberRow[]>;
  if (may.manage)
    for (const r of LIST_ROLES)
      people[r] = (await ctx.dir.lists.members(l.domain, l.local, r)).map((m) => ({
        address: m.address,
        bounces: m.bounces,
      }));
  return {
    view: 'list',
    address: addressOf(l),
    options: l.options,
    may,
    people,
    held: may.moderate ? await heldPosts(ctx, l, p) : [],
    archive: await archiveIndex(ctx, l, p),
  };
}

const clean = (xs: readonly string[]): string[] => xs.map((x) => x.trim()).filter((x) => x !== '');

/** Checks the list change against the principal (AccessDenied), then makes it with src/lists' functions. */
export async function performListChange(ctx: ListCtx, p: Principal, c: ListChange): Promise<string> {
  switch (c.op) {
    case 'list.create': {
      const { domain, local } = parseListAddress(c.address);
      const d = await ctx.dir.resolveDomain(domain);
      if (!d) throw new DirectoryError(`no domain ${domain} in the directory`);
      const usersMay = await ctx.dir.lists.usersMayCreate(d.name);
      authorize(p, { scope: 'list-create', domain: d.name, usersMay });
      // a user (not an administrator of the domain) creates its own list: it is an owner
      const self = p.kind === 'login' && refusal(p, { scope: 'domain', domain: d.name }) !== undefined;
      const owners = clean(self ? [p.login, ...c.owners] : c.owners);
      const l = await createList(ctx, {
        address: `${local}@${domain}`,
        owners: [...new Set(owners.map((o) => o.toLowerCase()))],
        moderators: clean(c.moderators),
        options: c.options,
      });
      return `created list ${addressOf(l)}`;
    }
    case 'list.users': {
      const d = await ctx.dir.resolveDomain(c.domain.trim());
      if (!d) throw new DirectoryError(`no domain ${c.domain.trim()} in the directory`);
      authorize(p, { scope: 'domain', domain: d.name });
      await ctx.dir.lists.setUsersMayCreate(d.name, c.on);
      return c.on ? `users of ${d.name} may create their own lists` : `only administrators create lists in ${d.name}`;
    }
    default:
      break;
  }
  const l = await findList(ctx, p, c.address);
  if (!l) throw new DirectoryError(`no list ${c.address.trim().toLowerCase()}`);
  const address = addressOf(l);
  switch (c.op) {
    case 'list.delete':
      await must(ctx, l, p, 'owner');
      await deleteList(ctx, address);
      return `deleted list ${address}`;
    case 'list.options': {
      await must(ctx, l, p, 'owner');
      const n = await setListOptions(ctx, p, address, c.options);
      const o = n.options;
      return (
        `settings of ${address}: members-only ${o.membersOnly ? 'on' : 'off'}, moderated ${o.moderated ? 'on' : 'off'}, ` +
        `reply-to-list ${o.replyToList ? 'on' : 'off'}`
      );
    }
    case 'list.members': {
      await must(ctx, l, p, 'owner');
      const added = c.add.length === 0 ? [] : await addMembers(ctx, p, address, c.role, clean(c.add));
      const gone = c.remove.length === 0 ? [] : await removeMembers(ctx, p, address, c.role, clean(c.remove));
      const said = [
        ...(added.length > 0 ? [`added ${added.join(', ')}`] : []),
        ...(gone.length > 0 ? [`removed ${gone.join(', ')}`] : []),
      ];
      return said.length === 0 ? `no ${c.role} of ${address} changed` : `${c.role}s of ${address}: ${said.join('; ')}`;
    }
    case 'list.moderate':
      await must(ctx, l, p, 'moderator');
      return decideHeld(ctx, l, p, c.id, c.accept);
  }
}
