// The Directory over SQL: one implementation for both backends (SQLite and PostgreSQL share the statements).
import {
  aliasDomainName,
  DirectoryError,
  bitsToFlags,
  checkNotSelf,
  checkTarget,
  domainName,
  flagsToBits,
  formatPolicy,
  localPart,
  parsePolicy,
} from './names.js';
import type { Row, SqlDriver, SqlValue } from './sql.js';
import * as roles from './roles.js';
import { listTaking, SqlLists } from './lists.js';
import type { ListTable } from './listtypes.js';
import { deleteHeld, getHeld, listHeldRecords, putHeld, type HeldRecord, type NewHeld } from './held.js';
import { CHANGE_CHANNEL, currentVersion } from './migrations.js';
import * as offices from './offices.js';
import * as moves from './moves.js';
import { PgDriver } from './sql.js';
import type { AddressLookup } from '../vdeliver/index.js';
import type {
  Alias,
  Directory,
  DomainAdmin,
  Domain,
  DomainLimits,
  DomainPatch,
  Mailbox,
  LoginTime,
  MailboxPatch,
  NewDomain,
  MailboxHome,
  NewMailbox,
  MailboxMove,
  MoveFile,
  MoveFileKey,
  NewOffice,
  Office,
  UnknownPolicy,
  WebSession,
} from './types.js';

/**
 * Everything a delivery reads, in one statement: the domain's row, the alias's targets in order, and the mailbox of
 * the local part and of its part before the first dash (parameters: local, local, the part before the dash, domain).
 * A row per alias target and mailbox found (at most two mailboxes); none when there is no such domain.
 */
export const ADDRESS_SQL = `SELECT d.name AS d_name, d.policy AS d_policy, d.policy_target AS d_policy_target,
  d.quota_bytes AS d_quota_bytes, a.target AS a_target, m.*
FROM domains d
LEFT JOIN aliases a ON a.domain = d.name AND a.local = ?
LEFT JOIN mailboxes m ON m.domain = d.name AND m.local IN (?, ?)
WHERE d.name = ?
ORDER BY a.position`;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : '';

/**
 * The columns of a policy, checked as vdeliver's word (parsePolicy: what `.qmail-default` may carry) whichever way it
 * came — a `--policy` text, the web's catch-all, vadddomain's -e, an import.
 */
function policyColumns(given: UnknownPolicy): [string, string] {
  const p = parsePolicy(formatPolicy(given));
  switch (p.kind) {
    case 'bounce-no-mailbox':
    case 'delete':
      return [p.kind, ''];
    case 'forward':
      return ['forward', p.address];
    case 'mailbox':
      return ['mailbox', p.local];
  }
}

function policyOf(kind: string, target: string): UnknownPolicy {
  if (kind === 'forward') return { kind, address: target };
  if (kind === 'mailbox') return { kind, local: target };
  if (kind === 'delete') return { kind };
  return { kind: 'bounce-no-mailbox' };
}

function checkLimit(n: number | null | undefined, what: string): number | null {
  if (n === null || n === undefined) return null;
  if (!Number.isSafeInteger(n) || n < 0) throw new DirectoryError(`${what} must be a whole number ≥ 0, not ${n}`);
  return n;
}

export class SqlDirectory implements Directory {
  /** The mailing lists' tables (migration 6; src/lists delivers them). */
  readonly lists: ListTable;

  constructor(
    private readonly db: SqlDriver,
    readonly describe: string,
    private readonly now: () => number = Date.now,
  ) {
    this.lists = new SqlLists(db, now);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  schemaVersion(): Promise<number> {
    return currentVersion(this.db);
  }

  private async domainRow(db: SqlDriver, r: Row): Promise<Domain> {
    const aliases = await db.all('SELECT alias FROM alias_domains WHERE domain = ? ORDER BY alias', [str(r['name'])]);
    return this.toDomain(
      r,
      aliases.map((a) => str(a['alias'])),
    );
  }

  private toDomain(r: Row, aliases: readonly string[]): Domain {
    const name = str(r['name']);
    return {
      name,
      aliases,
      policy: policyOf(str(r['policy']), str(r['policy_target'])),
      limits: {
        maxMailboxes: num(r['max_mailboxes']),
        maxAliases: num(r['max_aliases']),
        maxForwards: num(r['max_forwards']),
        quotaBytes: num(r['quota_bytes']),
      },
      account: { user: str(r['account']), uid: Number(r['uid']), gid: Number(r['gid']) },
      created: new Date(Number(r['created'])),
    };
  }

  private mailboxRow(r: Row): Mailbox {
    const domain = str(r['domain']);
    const local = str(r['local']);
    const fwd = str(r['forward']);
    return {
      domain,
      local,
      passwordHash: str(r['password']),
      realName: str(r['real_name']),
      quotaBytes: num(r['quota_bytes']),
      quotaMessages: num(r['quota_messages']),
      flags: bitsToFlags(Number(r['flags'])),
      created: new Date(Number(r['created'])),
      lastLogin: r['last_login'] === null || r['last_login'] === undefined ? null : new Date(Number(r['last_login'])),
      home: `domains/${domain}/${local}`,
      forward: fwd === '' ? [] : fwd.split('\n'),
      keepCopy: Number(r['keep_copy']) !== 0,
      vacation: roles.vacationOf(str(r['vacation'])),
      spamFolder: str(r['spam_folder'] ?? '') === '' ? null : str(r['spam_folder']),
    };
  }

  /** The domain's row; with lock, PostgreSQL holds it until commit so limit checks cannot race. */
  private async need(db: SqlDriver, name: string, lock = false): Promise<Row> {
    const forUpdate = lock && db.dialect === 'postgres' ? ' FOR UPDATE' : '';
    const rows = await db.all(`SELECT * FROM domains WHERE name = ?${forUpdate}`, [name]);
    const r = rows[0];
    if (!r) throw new DirectoryError(`no domain ${name} in the directory; add it with quail domain add ${name}`);
    return r;
  }

  async addDomain(d: NewDomain): Promise<Domain> {
    const name = domainName(d.name);
    const [policy, target] = policyColumns(d.policy ?? { kind: 'bounce-no-mailbox' });
    const l = d.limits ?? {};
    return this.db.transaction(async (tx) => {
      if ((await tx.all('SELECT 1 FROM domains WHERE name = ?', [name])).length > 0) {
        throw new DirectoryError(`domain ${name} already exists`);
      }
      if ((await tx.all('SELECT domain FROM alias_domains WHERE alias = ?', [name])).length > 0) {
        throw new DirectoryError(`${name} is already an alias domain; remove the alias first`);
      }
      if ((await tx.all('SELECT 1 FROM held_domains WHERE name = ?', [name])).length > 0)
        throw new DirectoryError(`${name} is a held domain; quail held remove ${name} first`);
      await tx.run(
        `INSERT INTO domains (name, policy, policy_target, max_mailboxes, max_aliases, max_forwards, quota_bytes, account, uid, gid, created)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          name,
          policy,
          target,
          checkLimit(l.maxMailboxes, 'max mailboxes'),
          checkLimit(l.maxAliases, 'max aliases'),
          checkLimit(l.maxForwards, 'max forwards'),
          checkLimit(l.quotaBytes, 'domain quota'),
          d.account.user,
          d.account.uid,
          d.account.gid,
          this.now(),
        ],
      );
      return this.domainRow(tx, await this.need(tx, name));
    });
  }

  async getDomain(name: string): Promise<Domain | null> {
    const r = (await this.db.all('SELECT * FROM domains WHERE name = ?', [name.toLowerCase()]))[0];
    return r ? this.domainRow(this.db, r) : null;
  }

  async resolveDomain(name: string): Promise<Domain | null> {
    const n = name.toLowerCase();
    const direct = await this.getDomain(n);
    if (direct) return direct;
    const target = await this.aliasTarget(n);
    return target === null ? null : this.getDomain(target);
  }

  /** The domain an alias domain `n` (lowercase, not a domain itself) points to: its own alias, else the longest `.`-alias. */
  private async aliasTarget(n: string): Promise<string | null> {
    const a = (await this.db.all('SELECT domain FROM alias_domains WHERE alias = ?', [n]))[0];
    if (a) return str(a['domain']);
    // `.example.com` aliases (quail domain add --subdomains): the longest one that ends the name wins
    const labels = n.split('.');
    const below = labels.slice(1).map((_, i) => `.${labels.slice(i + 1).join('.')}`);
    if (below.length === 0) return null;
    const rows = await this.db.all(
      `SELECT alias, domain FROM alias_domains WHERE alias IN (${below.map(() => '?').join(', ')})`,
      below,
    );
    const best = rows
      .map((r) => [str(r['alias']), str(r['domain'])] as const)
      .sort((x, y) => y[0].length - x[0].length)[0];
    return best ? best[1] : null;
  }

  /**
   * One statement per delivery (ADDRESS_SQL): on SQLite each statement takes the file's shared lock, and four of them
   * per delivery were a fifth of the delivery worker's time (docs/PERFORMANCE.md, thirteenth pass); on PostgreSQL one
   * round trip instead of four. For a name that is no domain of its own (an alias domain, a `.example.com` one) the
   * alias is looked up (one or two statements), and the statement asked again of the domain it points to.
   */
  async lookupAddress(domain: string, local: string): Promise<AddressLookup | null> {
    const n = domain.toLowerCase();
    const l = local.toLowerCase();
    const dash = l.indexOf('-');
    const before = dash > 0 ? l.slice(0, dash) : l;
    let rows = await this.db.all(ADDRESS_SQL, [l, l, before, n]);
    if (rows.length === 0) {
      const target = await this.aliasTarget(n);
      if (target === null) return null;
      rows = await this.db.all(ADDRESS_SQL, [l, l, before, target]);
      if (rows.length === 0) return null; // deleted in between
    }
    const first = rows[0] ?? {};
    const targets = new Set<string>();
    let own: Mailbox | null = null;
    let stem: Mailbox | null = null;
    for (const r of rows) {
      if (r['a_target'] !== null && r['a_target'] !== undefined) targets.add(str(r['a_target']));
      if (r['local'] === null || r['local'] === undefined) continue;
      if (str(r['local']) === l) own ??= this.mailboxRow(r);
      else stem ??= this.mailboxRow(r);
    }
    const name = str(first['d_name']);
    const alias = l === '' || targets.size === 0 ? null : { targets: [...targets] };
    return {
      domain: {
        name,
        policy: policyOf(str(first['d_policy']), str(first['d_policy_target'])),
        limits: { quotaBytes: num(first['d_quota_bytes']) },
      },
      alias,
      mailbox: l === '' || alias ? null : (own ?? stem),
    };
  }

  /** Two queries however many domains there are (not one alias query per domain). */
  async listDomains(): Promise<Domain[]> {
    const rows = await this.db.all('SELECT * FROM domains ORDER BY name');
    const aliases = new Map<string, string[]>();
    for (const a of await this.db.all('SELECT alias, domain FROM alias_domains ORDER BY alias')) {
      const d = str(a['domain']);
      const list = aliases.get(d);
      if (list) list.push(str(a['alias']));
      else aliases.set(d, [str(a['alias'])]);
    }
    return rows.map((r) => this.toDomain(r, aliases.get(str(r['name'])) ?? []));
  }

  async updateDomain(name: string, patch: DomainPatch): Promise<Domain> {
    const n = name.toLowerCase();
    return this.db.transaction(async (tx) => {
      const cur = await this.domainRow(tx, await this.need(tx, n));
      const [policy, target] = policyColumns(patch.policy ?? cur.policy);
      const lim: DomainLimits = { ...cur.limits, ...patch.limits };
      const acct = patch.account ?? cur.account;
      await tx.run(
        `UPDATE domains SET policy = ?, policy_target = ?, max_mailboxes = ?, max_aliases = ?, max_forwards = ?,
         quota_bytes = ?, account = ?, uid = ?, gid = ? WHERE name = ?`,
        [
          policy,
          target,
          checkLimit(lim.maxMailboxes, 'max mailboxes'),
          checkLimit(lim.maxAliases, 'max aliases'),
          checkLimit(lim.maxForwards, 'max forwards'),
          checkLimit(lim.quotaBytes, 'domain quota'),
          acct.user,
          acct.uid,
          acct.gid,
          n,
        ],
      );
      return this.domainRow(tx, await this.need(tx, n));
    });
  }

  async deleteDomain(name: string): Promise<boolean> {
    const n = name.toLowerCase();
    return this.db.transaction(async (tx) => {
      // Explicit deletes as well as ON DELETE CASCADE: the result must not depend on a pragma.
      await roles.forgetLogins(tx, n);
      for (const t of [
        'list_domains',
        'list_members',
        'lists',
        'domain_admins',
        'aliases',
        'mailboxes',
        'alias_domains',
      ])
        await tx.run(`DELETE FROM ${t} WHERE domain = ?`, [n]);
      return (await tx.run('DELETE FROM domains WHERE name = ?', [n])) > 0;
    });
  }

  async addAliasDomain(alias: string, target: string): Promise<void> {
    const a = aliasDomainName(alias);
    const t = target.toLowerCase();
    await this.db.transaction(async (tx) => {
      await this.need(tx, t);
      if ((await tx.all('SELECT 1 FROM domains WHERE name = ?', [a])).length > 0)
        throw new DirectoryError(`${a} is already a domain`);
      const cur = (await tx.all('SELECT domain FROM alias_domains WHERE alias = ?', [a]))[0];
      if (cur) throw new DirectoryError(`${a} is already an alias of ${str(cur['domain'])}`);
      await tx.run('INSERT INTO alias_domains (alias, domain) VALUES (?, ?)', [a, t]);
    });
  }

  async deleteAliasDomain(alias: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM alias_domains WHERE alias = ?', [alias.toLowerCase()])) > 0;
  }

  async addMailbox(m: NewMailbox): Promise<Mailbox> {
    const d = m.domain.toLowerCase();
    const l = localPart(m.local);
    return this.db.transaction(async (tx) => {
      const dom = await this.domainRow(tx, await this.need(tx, d, true));
      if ((await tx.all('SELECT 1 FROM mailboxes WHERE domain = ? AND local = ?', [d, l])).length > 0) {
        throw new DirectoryError(`mailbox ${l}@${d} already exists`);
      }
      const list = await listTaking(tx, d, l, 'mailbox');
      if (list !== null) throw new DirectoryError(list);
      if (dom.limits.maxMailboxes !== null) {
        const n = Number((await tx.all('SELECT COUNT(*) AS n FROM mailboxes WHERE domain = ?', [d]))[0]?.['n'] ?? 0);
        if (n >= dom.limits.maxMailboxes)
          throw new DirectoryError(`domain ${d} already has its limit of ${dom.limits.maxMailboxes} mailboxes`);
      }
      const office = await offices.homeForNew(tx, m.office);
      await tx.run(
        `INSERT INTO mailboxes (domain, local, password, real_name, quota_bytes, quota_messages, flags, created, office)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          d,
          l,
          m.passwordHash,
          m.realName ?? '',
          checkLimit(m.quotaBytes, 'quota bytes'),
          checkLimit(m.quotaMessages, 'quota messages'),
          flagsToBits(m.flags ?? []),
          this.now(),
          office,
        ],
      );
      return this.mailboxRow((await tx.all('SELECT * FROM mailboxes WHERE domain = ? AND local = ?', [d, l]))[0] ?? {});
    });
  }

  async getMailbox(domain: string, local: string): Promise<Mailbox | null> {
    const r = (
      await this.db.all('SELECT * FROM mailboxes WHERE domain = ? AND local = ?', [
        domain.toLowerCase(),
        local.toLowerCase(),
      ])
    )[0];
    return r ? this.mailboxRow(r) : null;
  }

  async listMailboxes(domain: string): Promise<Mailbox[]> {
    const rows = await this.db.all('SELECT * FROM mailboxes WHERE domain = ? ORDER BY local', [domain.toLowerCase()]);
    return rows.map((r) => this.mailboxRow(r));
  }

  async countMailboxes(domain: string): Promise<number> {
    return Number(
      (await this.db.all('SELECT COUNT(*) AS n FROM mailboxes WHERE domain = ?', [domain.toLowerCase()]))[0]?.['n'] ??
        0,
    );
  }

  async updateMailbox(domain: string, local: string, patch: MailboxPatch): Promise<Mailbox> {
    const d = domain.toLowerCase();
    const l = local.toLowerCase();
    return this.db.transaction(async (tx) => {
      const row = (await tx.all('SELECT * FROM mailboxes WHERE domain = ? AND local = ?', [d, l]))[0];
      if (!row) throw new DirectoryError(`no mailbox ${l}@${d}; add it with quail user add ${l}@${d}`);
      const cur = this.mailboxRow(row);
      const forward = (patch.forward ?? cur.forward).map(checkTarget);
      if (patch.forward !== undefined) checkNotSelf(forward, l, d);
      if (patch.forward !== undefined && patch.forward.length > 0 && cur.forward.length === 0) {
        const dom = await this.domainRow(tx, await this.need(tx, d, true));
        if (dom.limits.maxForwards !== null) {
          const n = Number(
            (await tx.all(`SELECT COUNT(*) AS n FROM mailboxes WHERE domain = ? AND forward <> ''`, [d]))[0]?.['n'] ??
              0,
          );
          if (n >= dom.limits.maxForwards)
            throw new DirectoryError(`domain ${d} already has its limit of ${dom.limits.maxForwards} forwards`);
        }
      }
      const lastLogin = patch.lastLogin === undefined ? cur.lastLogin : patch.lastLogin;
      const v: SqlValue[] = [
        patch.passwordHash ?? cur.passwordHash,
        patch.realName ?? cur.realName,
        checkLimit(patch.quotaBytes === undefined ? cur.quotaBytes : patch.quotaBytes, 'quota bytes'),
        checkLimit(patch.quotaMessages === undefined ? cur.quotaMessages : patch.quotaMessages, 'quota messages'),
        flagsToBits(patch.flags ?? cur.flags),
        forward.join('\n'),
        (patch.keepCopy ?? cur.keepCopy) ? 1 : 0,
        lastLogin === null ? null : lastLogin.getTime(),
        roles.vacationText(patch.vacation === undefined ? cur.vacation : patch.vacation),
        roles.spamFolderText(patch.spamFolder === undefined ? cur.spamFolder : patch.spamFolder),
        d,
        l,
      ];
      await tx.run(
        `UPDATE mailboxes SET password = ?, real_name = ?, quota_bytes = ?, quota_messages = ?, flags = ?, forward = ?,
         keep_copy = ?, last_login = ?, vacation = ?, spam_folder = ? WHERE domain = ? AND local = ?`,
        v,
      );
      return this.mailboxRow((await tx.all('SELECT * FROM mailboxes WHERE domain = ? AND local = ?', [d, l]))[0] ?? {});
    });
  }

  recordLogins(logins: readonly LoginTime[]): Promise<number> {
    if (logins.length === 0) return Promise.resolve(0);
    return this.db.transaction(async (tx) => {
      let changed = 0;
      for (const x of logins) {
        const t = x.at.getTime();
        changed += await tx.run(
          'UPDATE mailboxes SET last_login = ? WHERE domain = ? AND local = ? AND (last_login IS NULL OR last_login < ?)',
          [t, x.domain.toLowerCase(), x.local.toLowerCase(), t],
        );
      }
      return changed;
    });
  }

  async deleteMailbox(domain: string, local: string): Promise<boolean> {
    const [d, l] = [domain.toLowerCase(), local.toLowerCase()];
    return this.db.transaction(async (tx) => {
      await roles.forgetLogins(tx, d, l);
      return (await tx.run('DELETE FROM mailboxes WHERE domain = ? AND local = ?', [d, l])) > 0;
    });
  }

  private async aliasIn(db: SqlDriver, d: string, l: string): Promise<Alias | null> {
    const rows = await db.all('SELECT target FROM aliases WHERE domain = ? AND local = ? ORDER BY position', [d, l]);
    return rows.length === 0 ? null : { domain: d, local: l, targets: rows.map((r) => str(r['target'])) };
  }

  async addAlias(domain: string, local: string, targets: readonly string[]): Promise<Alias> {
    const d = domain.toLowerCase();
    const l = localPart(local);
    const ts = targets.map(checkTarget);
    if (ts.length === 0) throw new DirectoryError(`alias ${l}@${d}: give at least one target`);
    checkNotSelf(ts, l, d);
    return this.db.transaction(async (tx) => {
      const dom = await this.domainRow(tx, await this.need(tx, d, true));
      const list = await listTaking(tx, d, l, 'alias');
      if (list !== null) throw new DirectoryError(list);
      const cur = await this.aliasIn(tx, d, l);
      if (!cur && dom.limits.maxAliases !== null) {
        const n = Number(
          (await tx.all('SELECT COUNT(DISTINCT local) AS n FROM aliases WHERE domain = ?', [d]))[0]?.['n'] ?? 0,
        );
        if (n >= dom.limits.maxAliases)
          throw new DirectoryError(`domain ${d} already has its limit of ${dom.limits.maxAliases} aliases`);
      }
      let pos = cur?.targets.length ?? 0;
      for (const t of ts) {
        if (cur?.targets.includes(t)) continue;
        await tx.run(
          'INSERT INTO aliases (domain, local, position, target) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
          [d, l, pos++, t],
        );
      }
      return (await this.aliasIn(tx, d, l)) ?? { domain: d, local: l, targets: [] };
    });
  }

  getAlias(domain: string, local: string): Promise<Alias | null> {
    return this.aliasIn(this.db, domain.toLowerCase(), local.toLowerCase());
  }

  async listAliases(domain: string): Promise<Alias[]> {
    const d = domain.toLowerCase();
    const rows = await this.db.all('SELECT local, target FROM aliases WHERE domain = ? ORDER BY local, position', [d]);
    const out: Alias[] = [];
    for (const r of rows) {
      const l = str(r['local']);
      const last = out[out.length - 1];
      if (last && last.local === l) (last.targets as string[]).push(str(r['target']));
      else out.push({ domain: d, local: l, targets: [str(r['target'])] });
    }
    return out;
  }

  async deleteAlias(domain: string, local: string, target?: string): Promise<boolean> {
    const d = domain.toLowerCase();
    const l = local.toLowerCase();
    if (target === undefined)
      return (await this.db.run('DELETE FROM aliases WHERE domain = ? AND local = ?', [d, l])) > 0;
    return (
      (await this.db.run('DELETE FROM aliases WHERE domain = ? AND local = ? AND target = ?', [d, l, target.trim()])) >
      0
    );
  }

  // Domain administrators and web sessions (roles.ts, migration 5).
  addDomainAdmin(domain: string, login: string): Promise<boolean> {
    return roles.addDomainAdmin(this.db, domain, login, this.now());
  }
  removeDomainAdmin(domain: string, login: string): Promise<boolean> {
    return roles.removeDomainAdmin(this.db, domain, login);
  }
  listDomainAdmins(domain?: string): Promise<DomainAdmin[]> {
    return roles.listDomainAdmins(this.db, domain);
  }
  adminDomainsOf(login: string): Promise<string[]> {
    return roles.adminDomainsOf(this.db, login);
  }
  addSession(s: WebSession): Promise<void> {
    return roles.addSession(this.db, s);
  }
  getSession(id: string, now: Date): Promise<WebSession | null> {
    return roles.getSession(this.db, id, now);
  }
  deleteSession(id: string): Promise<boolean> {
    return roles.deleteSession(this.db, id);
  }
  deleteSessions(
    by: { readonly login: string; readonly except?: string } | { readonly expiredAt: Date },
  ): Promise<number> {
    return roles.deleteSessions(this.db, by);
  }

  putHeld(h: NewHeld, replace: boolean): Promise<HeldRecord> {
    return putHeld(this.db, h, replace, this.now());
  }

  getHeld(name: string): Promise<HeldRecord | null> {
    return getHeld(this.db, name);
  }

  listHeld(): Promise<HeldRecord[]> {
    return listHeldRecords(this.db);
  }

  deleteHeld(name: string): Promise<boolean> {
    return deleteHeld(this.db, name);
  }

  addOffice(o: NewOffice): Promise<Office> {
    return offices.addOffice(this.db, o, this.now());
  }

  listOffices(): Promise<Office[]> {
    return offices.listOffices(this.db);
  }

  deleteOffice(name: string): Promise<boolean> {
    return offices.deleteOffice(this.db, name);
  }

  mailboxOffice(domain: string, local: string): Promise<string | null> {
    return offices.mailboxOffice(this.db, domain, local);
  }

  setMailboxOffice(domain: string, local: string, office: string): Promise<void> {
    return offices.setMailboxOffice(this.db, domain, local, office);
  }

  mailboxHomes(): Promise<MailboxHome[]> {
    return offices.mailboxHomes(this.db);
  }

  moveMailbox(
    domain: string,
    local: string,
    office: string,
  ): Promise<{ from: string; to: string; move: MailboxMove | null }> {
    return moves.moveMailbox(this.db, domain, local, office, this.now());
  }
  mailboxMoves(domain: string, local: string): Promise<MailboxMove[]> {
    return moves.mailboxMoves(this.db, domain, local);
  }
  officeMoves(office: string, since: number): Promise<MailboxMove[]> {
    return moves.officeMoves(this.db, office, since);
  }
  moveFileKeys(move: string): Promise<MoveFileKey[]> {
    return moves.moveFileKeys(this.db, move);
  }
  inFlightBytes(move: string): Promise<number> {
    return moves.inFlightBytes(this.db, move);
  }
  pushMoveFile(move: string, f: MoveFile): Promise<boolean> {
    return moves.pushMoveFile(this.db, move, f);
  }
  unwrittenMoveFiles(move: string, limit: number): Promise<MoveFile[]> {
    return moves.unwrittenMoveFiles(this.db, move, limit);
  }
  markMoveFileWritten(move: string, folder: string, name: string): Promise<void> {
    return moves.markMoveFileWritten(this.db, move, folder, name, this.now());
  }
  finishMove(move: string, note?: string): Promise<boolean> {
    return moves.finishMove(this.db, move, this.now(), note);
  }
  pruneMoveFiles(before: number): Promise<number> {
    return moves.pruneMoveFiles(this.db, before);
  }

  async watchChanges(
    onChange: (table: string) => void,
    onError: (err: Error) => void,
  ): Promise<{ close(): Promise<void> } | null> {
    if (!(this.db instanceof PgDriver)) return null;
    return this.db.listen(CHANGE_CHANNEL, onChange, onError);
  }
}
