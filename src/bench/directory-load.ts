// Bench-only bulk loader: a directory of N mailboxes (10 per domain) with qmail's files for every domain, fast.
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { hashPassword, openDirectory, SQLITE_FILE, type DeliveryAccount } from '../directory/index.js';
import { newmrh, newu } from '../users/index.js';

/** Mailboxes per domain: 1,000,000 mailboxes are 100,000 domains. */
export const PER_DOMAIN = 10;
/** What control/rcpthostsmax defaults to: the first 50 entries in rcpthosts, the rest in morercpthosts. */
const RCPTHOSTS_MAX = 50;
export const ME = 'bench.test';

export const domainOf = (i: number): string => `d${String(i).padStart(7, '0')}.bench.test`;
export const localOf = (j: number): string => `u${j}`;

export interface Built {
  readonly root: string;
  readonly domains: number;
  readonly mailboxes: number;
  readonly rowsSeconds: number;
  readonly filesSeconds: number;
  readonly sqliteBytes: number;
}

/**
 * Writes the rows straight into the directory's SQLite file (made and migrated by openDirectory first) in big
 * transactions with synchronous=OFF, every mailbox with the same precomputed scrypt hash (one scrypt per mailbox
 * would take hours), then qmail's files for every domain in the format the directory's sync writes
 * (rcpthosts + morercpthosts past 50 entries, virtualdomains, users/assign), compiled by newu and newmrh.
 * No domain or mailbox directories are made: the caller makes the few it delivers to.
 */
export async function buildDirectory(root: string, mailboxes: number, account: DeliveryAccount, progress: (t: string) => void): Promise<Built> {
  const domains = Math.max(1, Math.ceil(mailboxes / PER_DOMAIN));
  mkdirSync(join(root, 'control'), { recursive: true });
  mkdirSync(join(root, 'users'), { recursive: true });
  mkdirSync(join(root, 'domains'), { recursive: true });
  writeFileSync(join(root, 'control', 'me'), `${ME}\n`);
  await (await openDirectory({ root })).close();
  const hash = await hashPassword('bench-password');

  const t0 = process.hrtime.bigint();
  const db = new Database(join(root, SQLITE_FILE));
  try {
    db.pragma('synchronous = OFF');
    db.pragma('journal_mode = MEMORY');
    const dom = db.prepare(`INSERT INTO domains (name, policy, policy_target, account, uid, gid, created) VALUES (?, 'bounce-no-mailbox', '', ?, ?, ?, ?)`);
    const box = db.prepare(`INSERT INTO mailboxes (domain, local, password, real_name, flags, created) VALUES (?, ?, ?, '', 0, ?)`);
    const now = Date.now();
    const batch = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const d = domainOf(i);
        dom.run(d, account.user, account.uid, account.gid, now);
        for (let j = 0; j < PER_DOMAIN && i * PER_DOMAIN + j < mailboxes; j++) box.run(d, localOf(j), hash, now);
      }
    });
    const step = 10_000;
    for (let i = 0; i < domains; i += step) {
      batch(i, Math.min(domains, i + step));
      if ((i / step) % 5 === 4) progress(`directory: ${Math.min(domains, i + step) * PER_DOMAIN} mailboxes written`);
    }
  } finally {
    db.close();
  }
  const t1 = process.hrtime.bigint();

  const rcpt: string[] = [ME];
  const more: string[] = [];
  const vd: string[] = [];
  const assign: string[] = [];
  for (let i = 0; i < domains; i++) {
    const d = domainOf(i);
    (rcpt.length < RCPTHOSTS_MAX ? rcpt : more).push(`${d}\n`);
    vd.push(`${d}:${d}\n`);
    assign.push(`+${d}-:${account.user}:${account.uid}:${account.gid}:${root}/domains/${d}:-::\n`);
  }
  rcpt[0] = `${ME}\n`;
  writeFileSync(join(root, 'control', 'rcpthosts'), rcpt.join(''));
  writeFileSync(join(root, 'control', 'morercpthosts'), more.join(''));
  writeFileSync(join(root, 'control', 'virtualdomains'), vd.join(''));
  writeFileSync(join(root, 'users', 'assign'), `${assign.join('')}.\n`);
  newu(root);
  newmrh(root);
  const t2 = process.hrtime.bigint();
  return {
    root, domains, mailboxes,
    rowsSeconds: Number(t1 - t0) / 1e9,
    filesSeconds: Number(t2 - t1) / 1e9,
    sqliteBytes: statSync(join(root, SQLITE_FILE)).size,
  };
}
