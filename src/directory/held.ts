// Held domains in the directory (migration 3): mail kept in a Maildir for a customer host that is not always online.
import { isIP } from 'node:net';
import { DirectoryError, domainName, splitLogin } from './names.js';
import type { Row, SqlDriver } from './sql.js';
import type { DeliveryAccount } from './types.js';

/** One held domain as the directory records it (`quail held add`). */
export interface HeldRecord {
  /** Lowercase domain name. */
  readonly name: string;
  /** The customer's mail host, HOST or HOST:PORT (RELAYHOST's line). */
  readonly host: string;
  /** Seconds between timed pushes. */
  readonly everySeconds: number;
  /** The customer may ask for a push with ETRN (RFC 1985) from its host's address. */
  readonly etrn: boolean;
  /** The mailbox login (`user@domain`) that may take the domain's mail with ODMR's ATRN (RFC 2645); '' none. */
  readonly atrnLogin: string;
  /**
   * The ATRN login's shared secret for AUTH CRAM-MD5 (RFC 2645 asks for it; fetchmail's ODMR uses only it). Kept as
   * given, since CRAM-MD5 needs the secret itself; '' none (then only PLAIN/LOGIN with the mailbox password).
   */
  readonly atrnSecret: string;
  /** AutoTURN: client addresses (IP or IP/bits) whose SMTP session on port 25 triggers a push back to them. */
  readonly autoturn: readonly string[];
  /** The account the held Maildir belongs to (users/assign's user, uid, gid). */
  readonly account: DeliveryAccount;
  readonly created: Date;
}

export type NewHeld = Omit<HeldRecord, 'created'>;

const str = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : '';

/** `IP` or `IP/BITS` (IPv4 or IPv6): the normalised text, or a DirectoryError naming the fix. */
function cidr(raw: string): string {
  const [ip = '', bits, extra] = raw.trim().split('/');
  const v = isIP(ip);
  const max = v === 4 ? 32 : 128;
  const n = bits === undefined ? max : /^[0-9]{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (v === 0 || extra !== undefined || !(n >= 0 && n <= max))
    throw new DirectoryError(
      `${JSON.stringify(raw)} is not an address or network: give IP or IP/BITS, e.g. 192.0.2.7/32`,
    );
  return `${ip}/${n}`;
}

function check(h: NewHeld): NewHeld {
  if (!Number.isSafeInteger(h.everySeconds) || h.everySeconds < 1)
    throw new DirectoryError(`the push interval must be at least 1 second, not ${h.everySeconds}`);
  if (h.host.trim() === '' || /\s/.test(h.host.trim()))
    throw new DirectoryError(`bad host ${JSON.stringify(h.host)}: give HOST or HOST:PORT`);
  if (h.atrnSecret !== '' && h.atrnLogin === '')
    throw new DirectoryError('an ATRN secret needs an ATRN login: give --atrn LOGIN too');
  if (h.atrnSecret !== '' && !/^[\x21-\x7e]{8,512}$/.test(h.atrnSecret))
    throw new DirectoryError('the ATRN secret must be 8 to 512 printable ASCII characters without spaces');
  if (h.atrnLogin !== '' && splitLogin(h.atrnLogin) === null)
    throw new DirectoryError(`the ATRN login ${JSON.stringify(h.atrnLogin)} is not user@domain (a mailbox)`);
  return {
    ...h,
    name: domainName(h.name),
    host: h.host.trim(),
    atrnLogin: h.atrnLogin.toLowerCase(),
    autoturn: h.autoturn.map(cidr),
  };
}

function toHeld(r: Row): HeldRecord {
  const autoturn = str(r['autoturn']);
  return {
    name: str(r['name']),
    host: str(r['host']),
    everySeconds: Number(r['every_seconds']),
    etrn: Number(r['etrn']) !== 0,
    atrnLogin: str(r['atrn_login']),
    atrnSecret: str(r['atrn_secret']),
    autoturn: autoturn === '' ? [] : autoturn.split(' '),
    account: { user: str(r['account']), uid: Number(r['uid']), gid: Number(r['gid']) },
    created: new Date(Number(r['created'])),
  };
}

/** Adds or replaces (`replace`) the record; a name that is a managed domain or an alias domain is refused. */
export async function putHeld(db: SqlDriver, raw: NewHeld, replace: boolean, now: number): Promise<HeldRecord> {
  const h = check(raw);
  return db.transaction(async (tx) => {
    if ((await tx.all('SELECT 1 FROM domains WHERE name = ?', [h.name])).length > 0)
      throw new DirectoryError(`${h.name} is a mailbox domain here; remove it (quail domain remove) before holding it`);
    if ((await tx.all('SELECT 1 FROM alias_domains WHERE alias = ?', [h.name])).length > 0)
      throw new DirectoryError(`${h.name} is an alias domain here; remove the alias before holding it`);
    const old = (await tx.all('SELECT created FROM held_domains WHERE name = ?', [h.name]))[0];
    if (old !== undefined && !replace)
      throw new DirectoryError(
        `${h.name} is already held; quail held show ${h.name} says how (add --replace to change it)`,
      );
    if (old !== undefined) await tx.run('DELETE FROM held_domains WHERE name = ?', [h.name]);
    await tx.run(
      `INSERT INTO held_domains (name, host, every_seconds, etrn, atrn_login, atrn_secret, autoturn, account, uid, gid, created)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        h.name,
        h.host,
        h.everySeconds,
        h.etrn ? 1 : 0,
        h.atrnLogin,
        h.atrnSecret,
        h.autoturn.join(' '),
        h.account.user,
        h.account.uid,
        h.account.gid,
        old === undefined ? now : Number(old['created']),
      ],
    );
    const r = (await tx.all('SELECT * FROM held_domains WHERE name = ?', [h.name]))[0];
    if (r === undefined) throw new Error(`held domain ${h.name} vanished while it was written`);
    return toHeld(r);
  });
}

export async function getHeld(db: SqlDriver, name: string): Promise<HeldRecord | null> {
  const r = (await db.all('SELECT * FROM held_domains WHERE name = ?', [name.trim().toLowerCase()]))[0];
  return r === undefined ? null : toHeld(r);
}

export async function listHeldRecords(db: SqlDriver): Promise<HeldRecord[]> {
  return (await db.all('SELECT * FROM held_domains ORDER BY name')).map(toHeld);
}

export async function deleteHeld(db: SqlDriver, name: string): Promise<boolean> {
  return (await db.run('DELETE FROM held_domains WHERE name = ?', [name.trim().toLowerCase()])) > 0;
}
