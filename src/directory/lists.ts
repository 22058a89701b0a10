// The list tables over SQL (both backends share the statements): lists, list_members.
import { DirectoryError, domainName } from './names.js';
import type { Row, SqlDriver, SqlValue } from './sql.js';
import {
  DEFAULT_LIST_OPTIONS,
  type ListMember,
  type ListOptions,
  type ListRole,
  type ListTable,
  type MailingList,
} from './listtypes.js';

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : '';
const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(Number(v)));

/** A list's name: letters, digits, `.`, `_`, `-` (not first or last), at most 64; stored lowercase. */
export function listName(raw: string): string {
  const l = raw.trim().toLowerCase();
  if (!/^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/.test(l) || l.includes('..'))
    throw new DirectoryError(
      `${JSON.stringify(raw)} is not a list name (letters, digits, '.', '_' and '-' inside, at most 64 characters)`,
    );
  return l;
}

/**
 * A member's address, lowercased: `local@domain`, at most 254 octets, printable ASCII without spaces, quotes, angle
 * brackets, commas or backslashes (addresses that have to travel in `team-sc.COOKIE-local=domain@` and in headers).
 */
export function memberAddress(raw: string): string {
  const a = raw.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  const bad = /[^\x21-\x7e]|["<>(),;:\\[\]]/.test(a);
  if (a.length > 254 || bad || at <= 0 || at !== a.indexOf('@') || at > 64)
    throw new DirectoryError(
      `${JSON.stringify(raw.slice(0, 300))} is not a usable address (local@domain, at most 254 characters, no spaces or quotes)`,
    );
  domainName(a.slice(at + 1));
  return a;
}

function checkOptions(p: Partial<ListOptions>): void {
  if (p.maxBytes !== undefined && p.maxBytes !== null && (!Number.isSafeInteger(p.maxBytes) || p.maxBytes <= 0))
    throw new DirectoryError(`the size limit must be a whole number of bytes > 0, not ${p.maxBytes}`);
  for (const [k, v] of [
    ['subject prefix', p.subjectPrefix],
    ['description', p.description],
  ] as const)
    // eslint-disable-next-line no-control-regex -- control characters are what is refused
    if (v !== undefined && (v.length > 200 || /[\x00-\x1f\x7f]/.test(v)))
      throw new DirectoryError(`the ${k} must be one line of at most 200 characters`);
}

const bool = (b: boolean): number => (b ? 1 : 0);

/*
 * A list takes addresses of its domain: qmail-local reads the domain's `.qmail-LIST` (the list itself) and
 * `.qmail-LIST-default` (every `LIST-...`: subscribe, owner, return-..., cookies) before its `.qmail-default`, which
 * hands the rest to vdeliver and so to the mailboxes and aliases. A mailbox or an alias under such a name would never
 * get mail, and a list made over one would take its mail. These checks run inside the transactions that add a list,
 * a mailbox or an alias (each locks the domain's row on PostgreSQL), so every path (CLI, web, import) meets them.
 */

/** Does the list `list` take the address `local` (its own name, or `list-...`)? */
const takes = (list: string, local: string): boolean => local === list || local.startsWith(`${list}-`);

/**
 * Why a mailbox or an alias `local@domain` (lowercase) cannot be made because of a list, or null: a list of the domain
 * takes the address, or (a mailbox without '-') a list `local-...` holds one of the mailbox's extension addresses
 * (vdeliver gives `local-ext@` to the mailbox `local`; createList refuses the same pair the other way round).
 */
export async function listTaking(
  db: SqlDriver,
  domain: string,
  local: string,
  kind: 'mailbox' | 'alias',
): Promise<string | null> {
  const names = (await db.all('SELECT local FROM lists WHERE domain = ? ORDER BY local', [domain])).map((r) =>
    str(r['local']),
  );
  const over = names.find((l) => takes(l, local));
  if (over !== undefined)
    return (
      `the mailing list ${over}@${domain} takes ${over === local ? 'that address' : `every ${over}-... address`}: ` +
      `${kind === 'alias' ? 'an alias' : 'a mailbox'} ${local}@${domain} would never get mail (choose another name, or delete the list first)`
    );
  if (kind === 'mailbox' && !local.includes('-')) {
    const ext = names.find((l) => l.startsWith(`${local}-`));
    if (ext !== undefined)
      return (
        `the mailing list ${ext}@${domain} takes ${ext}@${domain}, an extension address of a mailbox ` +
        `${local}@${domain}: choose another name, or delete the list first`
      );
  }
  return null;
}

/**
 * Why a list `list@domain` cannot be made over the domain's mailboxes and aliases, or null: one is named `list`, one
 * is named `list-...` (the list would take its mail), or the mailbox before the list's first '-' would lose that
 * extension address to the list.
 */
async function listWouldTake(db: SqlDriver, domain: string, list: string): Promise<string | null> {
  const k = [domain, list];
  if (
    (await db.all('SELECT 1 FROM mailboxes WHERE domain = ? AND local = ?', k)).length > 0 ||
    (await db.all('SELECT 1 FROM aliases WHERE domain = ? AND local = ?', k)).length > 0
  )
    return `${list}@${domain} is already a mailbox or an alias`;
  const prefix = `${list}-`;
  for (const [table, what] of [
    ['mailboxes', 'mailbox'],
    ['aliases', 'alias'],
  ] as const) {
    // substr, not LIKE: '_' is a list name's character and LIKE's wildcard.
    const r = await db.all(
      `SELECT local FROM ${table} WHERE domain = ? AND substr(local, 1, ?) = ? ORDER BY local LIMIT 1`,
      [domain, prefix.length, prefix],
    );
    if (r[0] !== undefined)
      return (
        `the ${what} ${str(r[0]['local'])}@${domain} exists, and a list ${list}@${domain} would take its mail ` +
        `(every ${prefix}... address is the list's): choose another name, or remove the ${what} first`
      );
  }
  const dash = list.indexOf('-');
  if (
    dash > 0 &&
    (await db.all('SELECT 1 FROM mailboxes WHERE domain = ? AND local = ?', [domain, list.slice(0, dash)])).length > 0
  )
    return `the mailbox ${list.slice(0, dash)}@${domain} receives ${list}@${domain} (its extension): choose another name`;
  return null;
}

export class SqlLists implements ListTable {
  constructor(
    private readonly db: SqlDriver,
    private readonly now: () => number,
  ) {}

  private toList(r: Row): MailingList {
    return {
      domain: str(r['domain']),
      local: str(r['local']),
      secret: str(r['secret']),
      options: {
        membersOnly: Number(r['members_only']) !== 0,
        moderated: Number(r['moderated']) !== 0,
        subjectPrefix: str(r['subject_prefix']),
        replyToList: Number(r['reply_to_list']) !== 0,
        maxBytes: num(r['max_bytes']),
        description: str(r['description']),
      },
      created: new Date(Number(r['created'])),
    };
  }

  private toMember(r: Row): ListMember {
    return {
      address: str(r['address']),
      role: str(r['role']) as ListRole,
      added: new Date(Number(r['added'])),
      bounces: Number(r['bounces']),
      firstBounce: date(r['first_bounce']),
      lastBounce: date(r['last_bounce']),
      probeSent: date(r['probe_sent']),
    };
  }

  async create(
    domain: string,
    local: string,
    secret: string,
    options: Partial<ListOptions> = {},
  ): Promise<MailingList> {
    const d = domainName(domain);
    const l = listName(local);
    checkOptions(options);
    const o = { ...DEFAULT_LIST_OPTIONS, ...options };
    return this.db.transaction(async (tx) => {
      // The domain's row locked (PostgreSQL) as addMailbox and addAlias lock it: the name checks cannot race.
      const forUpdate = tx.dialect === 'postgres' ? ' FOR UPDATE' : '';
      if ((await tx.all(`SELECT name FROM domains WHERE name = ?${forUpdate}`, [d])).length === 0)
        throw new DirectoryError(`no domain ${d} in the directory; add it with quail domain add ${d}`);
      if ((await tx.all('SELECT local FROM lists WHERE domain = ? AND local = ?', [d, l])).length > 0)
        throw new DirectoryError(`the list ${l}@${d} exists already`);
      const taken = await listWouldTake(tx, d, l);
      if (taken !== null) throw new DirectoryError(taken);
      await tx.run(
        `INSERT INTO lists (domain, local, secret, members_only, moderated, subject_prefix, reply_to_list, max_bytes,
          description, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          d,
          l,
          secret,
          bool(o.membersOnly),
          bool(o.moderated),
          o.subjectPrefix,
          bool(o.replyToList),
          o.maxBytes,
          o.description,
          this.now(),
        ],
      );
      const r = await tx.all('SELECT * FROM lists WHERE domain = ? AND local = ?', [d, l]);
      return this.toList(r[0] as Row);
    });
  }

  async get(domain: string, local: string): Promise<MailingList | null> {
    const r = await this.db.all('SELECT * FROM lists WHERE domain = ? AND local = ?', [
      domain.toLowerCase(),
      local.toLowerCase(),
    ]);
    return r[0] ? this.toList(r[0]) : null;
  }

  async all(domain?: string): Promise<MailingList[]> {
    const r =
      domain === undefined
        ? await this.db.all('SELECT * FROM lists ORDER BY domain, local')
        : await this.db.all('SELECT * FROM lists WHERE domain = ? ORDER BY local', [domain.toLowerCase()]);
    return r.map((x) => this.toList(x));
  }

  async update(domain: string, local: string, patch: Partial<ListOptions>): Promise<MailingList> {
    checkOptions(patch);
    const sets: string[] = [];
    const vals: SqlValue[] = [];
    const set = (col: string, v: SqlValue): void => {
      sets.push(`${col} = ?`);
      vals.push(v);
    };
    if (patch.membersOnly !== undefined) set('members_only', bool(patch.membersOnly));
    if (patch.moderated !== undefined) set('moderated', bool(patch.moderated));
    if (patch.subjectPrefix !== undefined) set('subject_prefix', patch.subjectPrefix);
    if (patch.replyToList !== undefined) set('reply_to_list', bool(patch.replyToList));
    if (patch.maxBytes !== undefined) set('max_bytes', patch.maxBytes);
    if (patch.description !== undefined) set('description', patch.description);
    const d = domain.toLowerCase();
    const l = local.toLowerCase();
    if (sets.length > 0)
      await this.db.run(`UPDATE lists SET ${sets.join(', ')} WHERE domain = ? AND local = ?`, [...vals, d, l]);
    const got = await this.get(d, l);
    if (!got) throw new DirectoryError(`no list ${l}@${d}`);
    return got;
  }

  async remove(domain: string, local: string): Promise<boolean> {
    const k = [domain.toLowerCase(), local.toLowerCase()];
    return this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM list_members WHERE domain = ? AND local = ?', k);
      return (await tx.run('DELETE FROM lists WHERE domain = ? AND local = ?', k)) > 0;
    });
  }

  async addMember(domain: string, local: string, role: ListRole, address: string): Promise<boolean> {
    const a = memberAddress(address);
    const k = [domain.toLowerCase(), local.toLowerCase()];
    return this.db.transaction(async (tx) => {
      if ((await tx.all('SELECT local FROM lists WHERE domain = ? AND local = ?', k)).length === 0)
        throw new DirectoryError(`no list ${k[1]}@${k[0]}`);
      const have = await tx.all(
        'SELECT address FROM list_members WHERE domain = ? AND local = ? AND role = ? AND address = ?',
        [...k, role, a],
      );
      if (have.length > 0) return false;
      await tx.run('INSERT INTO list_members (domain, local, role, address, added) VALUES (?, ?, ?, ?, ?)', [
        ...k,
        role,
        a,
        this.now(),
      ]);
      return true;
    });
  }

  async removeMember(domain: string, local: string, role: ListRole, address: string): Promise<boolean> {
    const n = await this.db.run(
      'DELETE FROM list_members WHERE domain = ? AND local = ? AND role = ? AND address = ?',
      [domain.toLowerCase(), local.toLowerCase(), role, address.trim().toLowerCase()],
    );
    return n > 0;
  }

  async members(domain: string, local: string, role: ListRole): Promise<ListMember[]> {
    const r = await this.db.all(
      'SELECT * FROM list_members WHERE domain = ? AND local = ? AND role = ? ORDER BY address',
      [domain.toLowerCase(), local.toLowerCase(), role],
    );
    return r.map((x) => this.toMember(x));
  }

  async getMember(domain: string, local: string, role: ListRole, address: string): Promise<ListMember | null> {
    const r = await this.db.all(
      'SELECT * FROM list_members WHERE domain = ? AND local = ? AND role = ? AND address = ?',
      [domain.toLowerCase(), local.toLowerCase(), role, address.trim().toLowerCase()],
    );
    return r[0] ? this.toMember(r[0]) : null;
  }

  async recordBounce(domain: string, local: string, address: string, at: number): Promise<ListMember | null> {
    const k = [domain.toLowerCase(), local.toLowerCase(), 'subscriber', address.trim().toLowerCase()];
    const n = await this.db.run(
      `UPDATE list_members SET bounces = bounces + 1, first_bounce = COALESCE(first_bounce, ?), last_bounce = ?
        WHERE domain = ? AND local = ? AND role = ? AND address = ?`,
      [at, at, ...k],
    );
    return n > 0 ? this.getMember(k[0] as string, k[1] as string, 'subscriber', k[3] as string) : null;
  }

  async setProbe(domain: string, local: string, address: string, at: number | null): Promise<void> {
    const k = [domain.toLowerCase(), local.toLowerCase(), 'subscriber', address.trim().toLowerCase()];
    if (at === null)
      await this.db.run(
        `UPDATE list_members SET bounces = 0, first_bounce = NULL, last_bounce = NULL, probe_sent = NULL
          WHERE domain = ? AND local = ? AND role = ? AND address = ?`,
        k,
      );
    else
      await this.db.run(
        'UPDATE list_members SET probe_sent = ? WHERE domain = ? AND local = ? AND role = ? AND address = ?',
        [at, ...k],
      );
  }

  async usersMayCreate(domain: string): Promise<boolean> {
    const r = await this.db.all('SELECT users_create FROM list_domains WHERE domain = ?', [domain.toLowerCase()]);
    return r[0] !== undefined && Number(r[0]['users_create']) !== 0;
  }

  async setUsersMayCreate(domain: string, on: boolean): Promise<void> {
    const d = domainName(domain);
    await this.db.transaction(async (tx) => {
      if ((await tx.all('SELECT name FROM domains WHERE name = ?', [d])).length === 0)
        throw new DirectoryError(`no domain ${d} in the directory`);
      if ((await tx.run('UPDATE list_domains SET users_create = ? WHERE domain = ?', [bool(on), d])) === 0)
        await tx.run('INSERT INTO list_domains (domain, users_create) VALUES (?, ?)', [d, bool(on)]);
    });
  }
}
