// Domain administrators and web admin sessions over SQL (migration 5): the rows behind src/access's roles.
import { DirectoryError, domainName, splitLogin } from './names.js';
import type { Row, SqlDriver } from './sql.js';
import type { DomainAdmin, Vacation, WebSession } from './types.js';

const str = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : '';

/** `login` as stored: `local@domain` of an existing mailbox, its domain resolved through alias domains. */
async function mailboxLogin(db: SqlDriver, login: string): Promise<string> {
  const parts = splitLogin(login.trim());
  if (!parts) throw new DirectoryError(`${JSON.stringify(login)} is not a mailbox login (user@domain)`);
  const [local, dom] = parts;
  const direct = await db.all('SELECT name FROM domains WHERE name = ?', [dom]);
  const viaAlias =
    direct.length > 0 ? direct : await db.all('SELECT domain AS name FROM alias_domains WHERE alias = ?', [dom]);
  const domain = viaAlias[0] ? str(viaAlias[0]['name']) : dom;
  const m = await db.all('SELECT 1 FROM mailboxes WHERE domain = ? AND local = ?', [domain, local]);
  if (m.length === 0)
    throw new DirectoryError(
      `no mailbox ${local}@${domain}: a domain administrator logs in with a mailbox; add it with quail user add`,
    );
  return `${local}@${domain}`;
}

export async function addDomainAdmin(db: SqlDriver, domain: string, login: string, now: number): Promise<boolean> {
  const d = domainName(domain);
  return db.transaction(async (tx) => {
    if ((await tx.all('SELECT 1 FROM domains WHERE name = ?', [d])).length === 0)
      throw new DirectoryError(`no domain ${d} in the directory; add it with quail domain add ${d}`);
    const l = await mailboxLogin(tx, login);
    if ((await tx.all('SELECT 1 FROM domain_admins WHERE domain = ? AND login = ?', [d, l])).length > 0) return false;
    await tx.run('INSERT INTO domain_admins (domain, login, created) VALUES (?, ?, ?)', [d, l, now]);
    return true;
  });
}

export async function removeDomainAdmin(db: SqlDriver, domain: string, login: string): Promise<boolean> {
  return (
    (await db.run('DELETE FROM domain_admins WHERE domain = ? AND login = ?', [
      domain.trim().toLowerCase(),
      login.trim().toLowerCase(),
    ])) > 0
  );
}

const adminRow = (r: Row): DomainAdmin => ({
  domain: str(r['domain']),
  login: str(r['login']),
  created: new Date(Number(r['created'])),
});

export async function listDomainAdmins(db: SqlDriver, domain?: string): Promise<DomainAdmin[]> {
  const rows =
    domain === undefined
      ? await db.all('SELECT * FROM domain_admins ORDER BY domain, login')
      : await db.all('SELECT * FROM domain_admins WHERE domain = ? ORDER BY login', [domain.trim().toLowerCase()]);
  return rows.map(adminRow);
}

export async function adminDomainsOf(db: SqlDriver, login: string): Promise<string[]> {
  const rows = await db.all('SELECT domain FROM domain_admins WHERE login = ? ORDER BY domain', [
    login.trim().toLowerCase(),
  ]);
  return rows.map((r) => str(r['domain']));
}

export async function addSession(db: SqlDriver, s: WebSession): Promise<void> {
  await db.run('INSERT INTO web_sessions (id, login, csrf, created, expires) VALUES (?, ?, ?, ?, ?)', [
    s.id,
    s.login,
    s.csrf,
    s.created.getTime(),
    s.expires.getTime(),
  ]);
}

export async function getSession(db: SqlDriver, id: string, now: Date): Promise<WebSession | null> {
  const r = (await db.all('SELECT * FROM web_sessions WHERE id = ? AND expires > ?', [id, now.getTime()]))[0];
  return r
    ? {
        id: str(r['id']),
        login: str(r['login']),
        csrf: str(r['csrf']),
        created: new Date(Number(r['created'])),
        expires: new Date(Number(r['expires'])),
      }
    : null;
}

export async function deleteSession(db: SqlDriver, id: string): Promise<boolean> {
  return (await db.run('DELETE FROM web_sessions WHERE id = ?', [id])) > 0;
}

export async function deleteSessions(
  db: SqlDriver,
  by: { readonly login: string; readonly except?: string } | { readonly expiredAt: Date },
): Promise<number> {
  if (!('login' in by)) return db.run('DELETE FROM web_sessions WHERE expires <= ?', [by.expiredAt.getTime()]);
  return by.except === undefined
    ? db.run('DELETE FROM web_sessions WHERE login = ?', [by.login.toLowerCase()])
    : db.run('DELETE FROM web_sessions WHERE login = ? AND id <> ?', [by.login.toLowerCase(), by.except]);
}

/** A mailbox goes (or its whole domain): its administrator rows and sessions go with it. */
export async function forgetLogins(tx: SqlDriver, domain: string, local?: string): Promise<void> {
  for (const t of ['domain_admins', 'web_sessions']) {
    if (local === undefined)
      await tx.run(`DELETE FROM ${t} WHERE login IN (SELECT local || '@' || domain FROM mailboxes WHERE domain = ?)`, [
        domain,
      ]);
    else await tx.run(`DELETE FROM ${t} WHERE login = ?`, [`${local}@${domain}`]);
  }
}

/** The stored vacation (JSON in mailboxes.vacation; empty: none); what cannot be read counts as none. */
export function vacationOf(text: string): Vacation | null {
  if (text === '') return null;
  try {
    const v = JSON.parse(text) as Partial<Vacation>;
    return typeof v.subject === 'string' && typeof v.body === 'string' && typeof v.days === 'number'
      ? { subject: v.subject, body: v.body, days: v.days }
      : null;
  } catch {
    return null;
  }
}

/** A vacation checked (a subject of one line, 1 to 365 days, a body of at most 10,000 characters) as stored. */
export function vacationText(v: Vacation | null): string {
  if (v === null) return '';
  if (v.subject.includes('\n') || v.subject.length > 200)
    throw new DirectoryError('the vacation subject must be one line of at most 200 characters');
  if (v.body.trim() === '' || v.body.length > 10_000)
    throw new DirectoryError('the vacation message must have a text of at most 10,000 characters');
  if (!Number.isSafeInteger(v.days) || v.days < 1 || v.days > 365)
    throw new DirectoryError('the vacation period must be 1 to 365 days');
  return JSON.stringify({ subject: v.subject, body: v.body, days: v.days });
}

/**
 * A spam folder's name as stored ('' for none: the inbox). A Maildir++ folder of the top level (`Junk` is
 * `Maildir/.Junk/`, as Dovecot and Courier lay them out): letters, digits, space, `_` and `-`, at most 64; no `.`
 * (Maildir++'s hierarchy separator), `/` or a leading `.`, so it can name nothing outside the Maildir.
 */
export function spamFolderText(name: string | null): string {
  if (name === null) return '';
  if (!/^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$/.test(name) || name.endsWith(' '))
    throw new DirectoryError(
      `the spam folder ${JSON.stringify(name)} is not a folder name: use letters, digits, space, _ or - (e.g. Junk)`,
    );
  if (/^inbox$/i.test(name))
    throw new DirectoryError('the spam folder cannot be the inbox; to keep spam there, set none');
  return name;
}
