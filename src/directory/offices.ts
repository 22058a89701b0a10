// Offices (issue 16): the offices table and each mailbox's home office, over either backend.
import { DirectoryError, localPart } from './names.js';
import type { Row, SqlDriver } from './sql.js';
import type { MailboxHome, NewOffice, Office } from './types.js';

const str = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : '';

/** An office name: lowercase letters, digits and `-`, 1–32 characters, starting with a letter. */
export function officeName(raw: string): string {
  const n = raw.trim().toLowerCase();
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(n))
    throw new DirectoryError(
      `office name ${JSON.stringify(raw)}: use a letter, then letters, digits or '-' (at most 32), e.g. atl`,
    );
  return n;
}

/** An office's SMTP host: a host name or a bracketed IP address, lowercase (written into routes and smtproutes). */
export function officeHost(raw: string): string {
  const h = raw.trim().toLowerCase();
  if (!/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)$/.test(h) || h.length > 253)
    throw new DirectoryError(`office host ${JSON.stringify(raw)}: give a host name or IP address, e.g. 192.0.2.7`);
  return h;
}

export function officePort(p: number | undefined): number {
  const port = p ?? 25;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new DirectoryError(`office port ${String(p)}: give a number from 1 to 65535`);
  return port;
}

/** An office's STARTTLS requirement: '' (when offered), `verify`, or a CA file's absolute path. */
export function officeTls(t: string | undefined): string {
  const v = (t ?? '').trim();
  if (v === '' || v === 'may') return '';
  // eslint-disable-next-line no-control-regex -- a path on one line of a route's policy: no control character
  if (v === 'verify' || (v.startsWith('/') && !/[\x00-\x1f\x7f]/.test(v))) return v;
  throw new DirectoryError(
    `office TLS ${JSON.stringify(t)}: give verify, a CA file's absolute path (no control character), or nothing`,
  );
}

const toOffice = (r: Row): Office => ({
  name: str(r['name']),
  host: str(r['host']),
  port: Number(r['port']),
  tls: str(r['tls']),
  created: new Date(Number(r['created'])),
});

export async function addOffice(db: SqlDriver, o: NewOffice, now: number): Promise<Office> {
  const name = officeName(o.name);
  const host = officeHost(o.host);
  const port = officePort(o.port);
  const tls = officeTls(o.tls);
  return db.transaction(async (tx) => {
    if ((await tx.all('SELECT 1 FROM offices WHERE name = ?', [name])).length > 0)
      throw new DirectoryError(`office ${name} already exists`);
    await tx.run('INSERT INTO offices (name, host, port, tls, created) VALUES (?, ?, ?, ?, ?)', [
      name,
      host,
      port,
      tls,
      now,
    ]);
    return { name, host, port, tls, created: new Date(now) };
  });
}

export async function listOffices(db: SqlDriver): Promise<Office[]> {
  return (await db.all('SELECT * FROM offices ORDER BY name')).map(toOffice);
}

export async function deleteOffice(db: SqlDriver, raw: string): Promise<boolean> {
  const name = officeName(raw);
  return db.transaction(async (tx) => {
    const n = Number((await tx.all('SELECT COUNT(*) AS n FROM mailboxes WHERE office = ?', [name]))[0]?.['n'] ?? 0);
    if (n > 0)
      throw new DirectoryError(
        `office ${name} still holds ${n} mailbox${n === 1 ? '' : 'es'}: move them first (quail user move ADDRESS --office OTHER)`,
      );
    return (await tx.run('DELETE FROM offices WHERE name = ?', [name])) > 0;
  });
}

/**
 * The office a new mailbox gets: the one named (which must exist), else the only office, else none ('') when the
 * directory has no offices. With several offices one must be named.
 */
export async function homeForNew(tx: SqlDriver, wanted: string | undefined): Promise<string> {
  const offices = (await tx.all('SELECT name FROM offices ORDER BY name')).map((r) => str(r['name']));
  if (wanted !== undefined) {
    const name = officeName(wanted);
    if (!offices.includes(name))
      throw new DirectoryError(
        `no office ${name} in the directory${offices.length > 0 ? ` (there are: ${offices.join(', ')})` : ''}; add it with quail office add ${name} HOST`,
      );
    return name;
  }
  if (offices.length <= 1) return offices[0] ?? '';
  throw new DirectoryError(`the directory has several offices (${offices.join(', ')}): say which with --office NAME`);
}

export async function mailboxOffice(db: SqlDriver, domain: string, local: string): Promise<string | null> {
  const r = (
    await db.all('SELECT office FROM mailboxes WHERE domain = ? AND local = ?', [
      domain.toLowerCase(),
      local.toLowerCase(),
    ])
  )[0];
  return r ? str(r['office']) : null;
}

export async function setMailboxOffice(db: SqlDriver, domain: string, local: string, office: string): Promise<void> {
  const d = domain.toLowerCase();
  const l = localPart(local);
  await db.transaction(async (tx) => {
    const name = await homeForNew(tx, office);
    if ((await tx.run('UPDATE mailboxes SET office = ? WHERE domain = ? AND local = ?', [name, d, l])) === 0)
      throw new DirectoryError(`no mailbox ${l}@${d} in the directory`);
  });
}

export async function mailboxHomes(db: SqlDriver): Promise<MailboxHome[]> {
  return (await db.all('SELECT domain, local, office FROM mailboxes ORDER BY domain, local')).map((r) => ({
    domain: str(r['domain']),
    local: str(r['local']),
    office: str(r['office']),
  }));
}
