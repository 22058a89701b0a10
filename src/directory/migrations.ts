// Versioned schema migrations, run automatically when a directory is opened (one transaction, in order).
import type { SqlDriver } from './sql.js';

export interface Migration {
  readonly version: number;
  readonly what: string;
  /** Statements valid in both SQLite and PostgreSQL. */
  readonly sql: readonly string[];
  /** Statements run only on PostgreSQL, after `sql` (triggers: NOTIFY has no SQLite counterpart). */
  readonly postgres?: readonly string[];
}

/** The PostgreSQL NOTIFY channel a change to domains, mailboxes' offices, aliases or offices is announced on. */
export const CHANGE_CHANNEL = 'quail_directory';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    what: 'domains, alias domains, mailboxes, aliases',
    sql: [
      `CREATE TABLE domains (name TEXT PRIMARY KEY, policy TEXT NOT NULL, policy_target TEXT NOT NULL DEFAULT '',
        max_mailboxes BIGINT, max_aliases BIGINT, max_forwards BIGINT, quota_bytes BIGINT,
        account TEXT NOT NULL, uid BIGINT NOT NULL, gid BIGINT NOT NULL, created BIGINT NOT NULL)`,
      `CREATE TABLE alias_domains (alias TEXT PRIMARY KEY, domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE)`,
      `CREATE TABLE mailboxes (domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE, local TEXT NOT NULL,
        password TEXT NOT NULL, real_name TEXT NOT NULL DEFAULT '', quota_bytes BIGINT, quota_messages BIGINT,
        flags BIGINT NOT NULL DEFAULT 0, created BIGINT NOT NULL, last_login BIGINT, PRIMARY KEY (domain, local))`,
      `CREATE TABLE aliases (domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE, local TEXT NOT NULL,
        position BIGINT NOT NULL, target TEXT NOT NULL, PRIMARY KEY (domain, local, target))`,
    ],
  },
  {
    version: 2,
    what: 'per-mailbox forwarding (with or without a copy); alias domain lookup by target',
    sql: [
      `ALTER TABLE mailboxes ADD COLUMN forward TEXT NOT NULL DEFAULT ''`,
      `ALTER TABLE mailboxes ADD COLUMN keep_copy BIGINT NOT NULL DEFAULT 0`,
      `CREATE INDEX alias_domains_domain ON alias_domains (domain)`,
    ],
  },
  {
    version: 3,
    what: 'held domains: mail kept for customer hosts that are not always online (quail held add)',
    sql: [
      `CREATE TABLE held_domains (name TEXT PRIMARY KEY, host TEXT NOT NULL, every_seconds BIGINT NOT NULL,
        etrn BIGINT NOT NULL DEFAULT 0, atrn_login TEXT NOT NULL DEFAULT '', atrn_secret TEXT NOT NULL DEFAULT '', autoturn TEXT NOT NULL DEFAULT '',
        account TEXT NOT NULL, uid BIGINT NOT NULL, gid BIGINT NOT NULL, created BIGINT NOT NULL)`,
    ],
  },
  {
    version: 4,
    what: "offices (one domain in several offices): offices, each mailbox's home office, change notifications",
    sql: [
      `CREATE TABLE offices (name TEXT PRIMARY KEY, host TEXT NOT NULL, port BIGINT NOT NULL DEFAULT 25,
        tls TEXT NOT NULL DEFAULT '', created BIGINT NOT NULL)`,
      `ALTER TABLE mailboxes ADD COLUMN office TEXT NOT NULL DEFAULT ''`,
      `CREATE INDEX mailboxes_office ON mailboxes (office)`,
    ],
    postgres: [
      `CREATE OR REPLACE FUNCTION quail_directory_changed() RETURNS trigger LANGUAGE plpgsql AS
        $f$ BEGIN PERFORM pg_notify('quail_directory', TG_TABLE_NAME); RETURN NULL; END $f$`,
      ...['domains', 'alias_domains', 'aliases', 'offices'].map(
        (t) =>
          `CREATE TRIGGER quail_changed AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION quail_directory_changed()`,
      ),
      // Not on every UPDATE of a mailbox: a POP3 login's last_login would wake every server.
      `CREATE TRIGGER quail_changed AFTER INSERT OR DELETE OR UPDATE OF office ON mailboxes FOR EACH STATEMENT EXECUTE FUNCTION quail_directory_changed()`,
    ],
  },
  {
    version: 5,
    what: 'domain administrators (a mailbox login per administered domain), web admin sessions, vacation replies',
    sql: [
      `ALTER TABLE mailboxes ADD COLUMN vacation TEXT NOT NULL DEFAULT ''`,
      `CREATE TABLE domain_admins (domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE, login TEXT NOT NULL,
        created BIGINT NOT NULL, PRIMARY KEY (domain, login))`,
      `CREATE INDEX domain_admins_login ON domain_admins (login)`,
      `CREATE TABLE web_sessions (id TEXT PRIMARY KEY, login TEXT NOT NULL, csrf TEXT NOT NULL, created BIGINT NOT NULL,
        expires BIGINT NOT NULL)`,
      `CREATE INDEX web_sessions_login ON web_sessions (login)`,
    ],
  },
  {
    version: 6,
    what: 'mailing lists: the list, its options and secret; owners, moderators and subscribers with bounce counts',
    sql: [
      `CREATE TABLE lists (domain TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE, local TEXT NOT NULL,
        secret TEXT NOT NULL, members_only BIGINT NOT NULL DEFAULT 0, moderated BIGINT NOT NULL DEFAULT 0,
        subject_prefix TEXT NOT NULL DEFAULT '', reply_to_list BIGINT NOT NULL DEFAULT 0, max_bytes BIGINT,
        description TEXT NOT NULL DEFAULT '', created BIGINT NOT NULL, PRIMARY KEY (domain, local))`,
      `CREATE TABLE list_members (domain TEXT NOT NULL, local TEXT NOT NULL, role TEXT NOT NULL, address TEXT NOT NULL,
        added BIGINT NOT NULL, bounces BIGINT NOT NULL DEFAULT 0, first_bounce BIGINT, last_bounce BIGINT,
        probe_sent BIGINT, PRIMARY KEY (domain, local, role, address),
        FOREIGN KEY (domain, local) REFERENCES lists (domain, local) ON DELETE CASCADE)`,
    ],
  },
  {
    version: 7,
    what: 'mailbox moves between offices: each move, and the Maildir files it carries from the old office to the new',
    sql: [
      `CREATE TABLE mailbox_moves (id TEXT PRIMARY KEY, domain TEXT NOT NULL, local TEXT NOT NULL,
        from_office TEXT NOT NULL, to_office TEXT NOT NULL, started BIGINT NOT NULL, finished BIGINT,
        files BIGINT NOT NULL DEFAULT 0, bytes BIGINT NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '')`,
      `CREATE INDEX mailbox_moves_mailbox ON mailbox_moves (domain, local)`,
      `CREATE TABLE move_files (move TEXT NOT NULL REFERENCES mailbox_moves(id) ON DELETE CASCADE, folder TEXT NOT NULL,
        name TEXT NOT NULL, sub TEXT NOT NULL, info TEXT NOT NULL, size BIGINT NOT NULL, data TEXT, written BIGINT,
        PRIMARY KEY (move, folder, name))`,
    ],
    postgres: [
      // On the same channel: the payload (the table's name) tells a keeper this is move work, not a table refresh.
      ...['mailbox_moves', 'move_files'].map(
        (t) =>
          `CREATE TRIGGER quail_changed AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION quail_directory_changed()`,
      ),
    ],
  },
  // spam folder (issue 19, helper webusers): no new table, so the backup list is unchanged (mailboxes is in it)
  {
    version: 8,
    what: "a mailbox's spam folder: mail the filter tagged as spam goes to this Maildir++ folder (empty: the inbox)",
    sql: [`ALTER TABLE mailboxes ADD COLUMN spam_folder TEXT NOT NULL DEFAULT ''`],
  },
  {
    version: 9,
    what: 'list settings of a domain: whether its users may create their own lists (the web admin, quail list users)',
    sql: [
      `CREATE TABLE list_domains (domain TEXT PRIMARY KEY REFERENCES domains(name) ON DELETE CASCADE,
        users_create BIGINT NOT NULL DEFAULT 0)`,
    ],
  },
];

export const LATEST = MIGRATIONS.reduce((m, x) => Math.max(m, x.version), 0);

export async function currentVersion(db: SqlDriver): Promise<number> {
  await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)');
  const rows = await db.all('SELECT MAX(version) AS v FROM schema_migrations');
  const v = rows[0]?.['v'];
  return v === null || v === undefined ? 0 : Number(v);
}

/**
 * The versions of MIGRATIONS not recorded in schema_migrations, lowest first. Every missing one is applied, not only
 * those above the highest recorded: a directory made by a build that had a later migration but not an earlier one
 * (two branches that each added one) gets the earlier one too instead of silently lacking its tables.
 */
async function missingVersions(db: SqlDriver): Promise<number[]> {
  const rows = await db.all('SELECT version FROM schema_migrations');
  const have = new Set(rows.map((r) => Number(r['version'])));
  return MIGRATIONS.map((m) => m.version)
    .filter((v) => !have.has(v))
    .sort((a, b) => a - b);
}

/**
 * Brings the schema to LATEST. `backup(from)` runs first when an existing schema (version > 0) is about to
 * change; a failed backup stops the migration. PostgreSQL takes an advisory lock so two processes opening the
 * directory at once do not both migrate. Returns the versions applied.
 */
export async function migrate(
  db: SqlDriver,
  backup: (from: number) => Promise<void>,
  now: () => number = Date.now,
): Promise<number[]> {
  // Under the lock too: two processes creating schema_migrations at once would collide in PostgreSQL's catalogue.
  const before = await db.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.all('SELECT pg_advisory_xact_lock(7106321)');
    return { version: await currentVersion(tx), missing: await missingVersions(tx) };
  });
  if (before.missing.length === 0) return [];
  if (before.version > 0) await backup(before.version);
  return db.transaction(async (tx) => {
    if (tx.dialect === 'postgres') await tx.all('SELECT pg_advisory_xact_lock(7106321)');
    const missing = new Set(await missingVersions(tx));
    const applied: number[] = [];
    for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
      if (!missing.has(m.version)) continue;
      for (const s of m.sql) await tx.run(s);
      if (tx.dialect === 'postgres') for (const s of m.postgres ?? []) await tx.run(s);
      await tx.run('INSERT INTO schema_migrations (version, applied) VALUES (?, ?)', [m.version, now()]);
      applied.push(m.version);
    }
    return applied;
  });
}

/** Every table a schema version may hold (those missing at that version are skipped). */
const TABLES = [
  'schema_migrations',
  'domains',
  'alias_domains',
  'mailboxes',
  'aliases',
  // migration 3 (held domains)
  'held_domains',
  // migration 4 (offices)
  'offices',
  // migration 5 (domain administrators, web sessions)
  'domain_admins',
  'web_sessions',
  // lists (migration 6)
  'lists',
  'list_members',
  // mailbox moves between offices (migration 7)
  'mailbox_moves',
  'move_files',
  // migration 9 (a domain's list settings)
  'list_domains',
] as const;

/**
 * PostgreSQL's backup before a migration: the tables of the current schema copied, rows and all, into a new
 * schema `quail_backup_v<from>_<ms>` in the same database (pg_dump is not at hand for a library, and a copy
 * beside the tables is what an administrator can inspect or restore with plain SQL). Under the migration lock;
 * when another process migrated meanwhile, nothing is copied. Returns the schema made, or null.
 */
export async function pgBackupBeforeMigration(db: SqlDriver, from: number, ms: number): Promise<string | null> {
  return db.transaction(async (tx) => {
    await tx.all('SELECT pg_advisory_xact_lock(7106321)');
    if ((await currentVersion(tx)) !== from) return null;
    const schema = `quail_backup_v${from}_${ms}`;
    await tx.run(`CREATE SCHEMA ${schema}`);
    const present = await tx.all(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()',
    );
    const names = new Set(present.map((r) => String(r['table_name'])));
    for (const t of TABLES) if (names.has(t)) await tx.run(`CREATE TABLE ${schema}.${t} AS SELECT * FROM ${t}`);
    return schema;
  });
}
