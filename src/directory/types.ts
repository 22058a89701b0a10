// The directory contract: domains, mailboxes and aliases as plain data, and the Promise-based Directory interface.
import type { MailboxLookup, UnknownPolicy, Vacation } from '../vdeliver/index.js';
import type { ListTable } from './listtypes.js';
import type { HeldRecord, NewHeld } from './held.js';

/** What happens to mail for an address of the domain that has no mailbox and no alias: vdeliver's policy language. */
export type { UnknownPolicy, Vacation };

/** Per-domain limits; null means unlimited. */
export interface DomainLimits {
  readonly maxMailboxes: number | null;
  readonly maxAliases: number | null;
  readonly maxForwards: number | null;
  readonly quotaBytes: number | null;
}

/** The unix account the domain's mail is delivered as (users/assign fields). */
export interface DeliveryAccount {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
}

export interface Domain {
  /** Lowercase domain name. */
  readonly name: string;
  /** Alias domains: the same mailboxes under other names (lowercase, sorted). */
  readonly aliases: readonly string[];
  readonly policy: UnknownPolicy;
  readonly limits: DomainLimits;
  readonly account: DeliveryAccount;
  readonly created: Date;
}

/** vpopmail's per-user flags (its gid bits), by name. */
export const MAILBOX_FLAGS = [
  'no-password-change',
  'no-pop',
  'no-webmail',
  'no-imap',
  'bounce-all',
  'no-relay',
  'no-dialup',
  'no-smtp-auth',
  'domain-admin',
  'system-admin',
] as const;
export type MailboxFlag = (typeof MAILBOX_FLAGS)[number];

export interface Mailbox {
  readonly domain: string;
  /** Lowercase local part. */
  readonly local: string;
  /** `$scrypt$...`, or an imported crypt(3) hash (`$1$`, `$5$`, `$6$`, ...). Empty: no password login. */
  readonly passwordHash: string;
  readonly realName: string;
  /** null: no quota. */
  readonly quotaBytes: number | null;
  readonly quotaMessages: number | null;
  readonly flags: readonly MailboxFlag[];
  readonly created: Date;
  readonly lastLogin: Date | null;
  /** Relative to the mail root: `domains/<domain>/<local>`; the Maildir is `<home>/Maildir/`. */
  readonly home: string;
  /** Per-mailbox forwarding targets (addresses); empty: none. */
  readonly forward: readonly string[];
  /** With forwarding: also deliver into the mailbox's own Maildir. */
  readonly keepCopy: boolean;
  /** The vacation reply (migration 5), or null: none. */
  readonly vacation: Vacation | null;
  /** Maildir++ folder for mail quail's filter tagged as spam (migration 8, `Junk` → `Maildir/.Junk/`); null: the inbox. */
  readonly spamFolder: string | null;
}

/** An address of a domain whose mail goes to targets: `addr`/`&addr` (forward), `/path/Maildir/` or `./x/`, `|program`. */
export interface Alias {
  readonly domain: string;
  readonly local: string;
  readonly targets: readonly string[];
}

/** A domain administrator: the login (`user@domain` of a mailbox, of any domain) who administers `domain`. */
export interface DomainAdmin {
  readonly domain: string;
  readonly login: string;
  readonly created: Date;
}

/** A web admin session: `id` is the SHA-256 (hex) of the cookie's token, never the token itself. */
export interface WebSession {
  readonly id: string;
  /** The mailbox logged in (`user@domain`, lowercase). */
  readonly login: string;
  /** The session's CSRF token, sent back with every change. */
  readonly csrf: string;
  readonly created: Date;
  readonly expires: Date;
}

export interface NewDomain {
  readonly name: string;
  readonly account: DeliveryAccount;
  readonly policy?: UnknownPolicy;
  readonly limits?: Partial<DomainLimits>;
}

export interface DomainPatch {
  readonly policy?: UnknownPolicy;
  readonly limits?: Partial<DomainLimits>;
  readonly account?: DeliveryAccount;
}

export interface NewMailbox {
  readonly domain: string;
  readonly local: string;
  readonly passwordHash: string;
  readonly realName?: string;
  readonly quotaBytes?: number | null;
  readonly quotaMessages?: number | null;
  readonly flags?: readonly MailboxFlag[];
  /** Home office (must exist); default: the one office when there is exactly one, else none. */
  readonly office?: string;
}

export interface MailboxPatch {
  readonly passwordHash?: string;
  readonly realName?: string;
  readonly quotaBytes?: number | null;
  readonly quotaMessages?: number | null;
  readonly flags?: readonly MailboxFlag[];
  readonly forward?: readonly string[];
  readonly keepCopy?: boolean;
  readonly lastLogin?: Date | null;
  readonly vacation?: Vacation | null;
  readonly spamFolder?: string | null;
}

/**
 * One directory, two backends (SQLite, PostgreSQL). Names are matched case-insensitively (stored lowercase).
 * Errors: DirectoryError (permanent: the request is wrong) or anything else (temporary). Its lookups are the
 * read-only interface vdeliver delivers through (MailboxLookup).
 */
/** A mailbox's login at a time, for recordLogins. */
export interface LoginTime {
  readonly domain: string;
  readonly local: string;
  readonly at: Date;
}

export interface Directory extends MailboxLookup, OfficeDirectory, MoveDirectory {
  /** 'sqlite' or 'postgres', and where (file path, or URL without password). */
  readonly describe: string;
  close(): Promise<void>;
  /** Schema version in use (after migrations). */
  schemaVersion(): Promise<number>;

  addDomain(d: NewDomain): Promise<Domain>;
  getDomain(name: string): Promise<Domain | null>;
  /** The domain itself or the domain an alias domain points to. */
  resolveDomain(name: string): Promise<Domain | null>;
  listDomains(): Promise<Domain[]>;
  updateDomain(name: string, patch: DomainPatch): Promise<Domain>;
  /** Deletes the domain with its mailboxes, aliases and alias domains; false when there was none. */
  deleteDomain(name: string): Promise<boolean>;
  addAliasDomain(alias: string, target: string): Promise<void>;
  deleteAliasDomain(alias: string): Promise<boolean>;

  addMailbox(m: NewMailbox): Promise<Mailbox>;
  getMailbox(domain: string, local: string): Promise<Mailbox | null>;
  listMailboxes(domain: string): Promise<Mailbox[]>;
  countMailboxes(domain: string): Promise<number>;
  updateMailbox(domain: string, local: string, patch: MailboxPatch): Promise<Mailbox>;
  /**
   * Writes last-login times in one transaction. Each is written only where it is later than the time on record (a
   * batch that arrives late never moves a time back) and touches no other column (a password changed meanwhile
   * stands). Mailboxes that no longer exist are skipped. Returns how many rows changed.
   */
  recordLogins(logins: readonly LoginTime[]): Promise<number>;
  deleteMailbox(domain: string, local: string): Promise<boolean>;

  /** Adds targets to the alias (creating it); duplicates are ignored. */
  addAlias(domain: string, local: string, targets: readonly string[]): Promise<Alias>;
  getAlias(domain: string, local: string): Promise<Alias | null>;
  listAliases(domain: string): Promise<Alias[]>;
  /** Removes one target, or the whole alias when target is undefined; false when nothing matched. */
  deleteAlias(domain: string, local: string, target?: string): Promise<boolean>;

  /** Makes `login` (an existing mailbox, of any domain) an administrator of `domain`; false when it already was. */
  addDomainAdmin(domain: string, login: string): Promise<boolean>;
  removeDomainAdmin(domain: string, login: string): Promise<boolean>;
  /** The administrators of `domain`, or (no domain) every row; sorted by domain, then login. */
  listDomainAdmins(domain?: string): Promise<DomainAdmin[]>;
  /** The domains `login` administers through domain_admins (not its flags), sorted. */
  adminDomainsOf(login: string): Promise<string[]>;

  addSession(s: WebSession): Promise<void>;
  /** The session with this id that has not expired at `now`, or null. */
  getSession(id: string, now: Date): Promise<WebSession | null>;
  deleteSession(id: string): Promise<boolean>;
  /**
   * Ends every session of `login` (a new password, a removed mailbox) but the one with id `except` (the session that
   * set its own password), or those expired at `expiredAt`.
   */
  deleteSessions(
    by: { readonly login: string; readonly except?: string } | { readonly expiredAt: Date },
  ): Promise<number>;
  /** Mailing lists (migration 6): their settings and people; src/lists delivers and administers them. */
  readonly lists: ListTable;
  /** Held domains (quail held): adds, or with replace changes, one; a mailbox or alias domain's name is refused. */
  putHeld(h: NewHeld, replace: boolean): Promise<HeldRecord>;
  getHeld(name: string): Promise<HeldRecord | null>;
  listHeld(): Promise<HeldRecord[]>;
  deleteHeld(name: string): Promise<boolean>;
}

/** An office (issue 16): a place with its own mail server; inter-office mail goes to `host:port` by SMTP. */
export interface Office {
  /** Lowercase: letters, digits, `-`. */
  readonly name: string;
  /** Host name or IP address of the office's SMTP server. */
  readonly host: string;
  readonly port: number;
  /** STARTTLS to the office: '' (when offered), `verify` (required, system CAs) or a CA file path (required). */
  readonly tls: string;
  readonly created: Date;
}

export interface NewOffice {
  readonly name: string;
  readonly host: string;
  readonly port?: number;
  readonly tls?: string;
}

/** Where one mailbox lives; `office` '' is "no office" (a single-server directory). */
export interface MailboxHome {
  readonly domain: string;
  readonly local: string;
  readonly office: string;
}

/** A mailbox's move from one office to another (migration 7): the switch, then its Maildir carried over. */
export interface MailboxMove {
  readonly id: string;
  readonly domain: string;
  readonly local: string;
  readonly from: string;
  readonly to: string;
  readonly started: Date;
  /** Every file carried is written at the new office and the old Maildir was empty; null while it goes on. */
  readonly finished: Date | null;
  /** Files and bytes carried so far. */
  readonly files: number;
  readonly bytes: number;
  /** Why it ended otherwise (the mailbox was deleted), or ''. */
  readonly note: string;
}

/** One Maildir file a move carries: `folder` '' (the inbox) or a Maildir++ folder (`.Sent`), `name` without info. */
export interface MoveFile {
  readonly folder: string;
  readonly name: string;
  readonly sub: 'new' | 'cur';
  /** The `:2,FLAGS` part of the name (flags kept), or ''. */
  readonly info: string;
  readonly data: Buffer;
}

export interface MoveFileKey {
  readonly folder: string;
  readonly name: string;
  readonly size: number;
  readonly written: boolean;
}

/** The move work of the offices' servers (src/directory/moves.ts, src/offices/mover.ts); a part of Directory. */
export interface MoveDirectory {
  /** Switches the home office and records the move in one transaction (move null: the mailbox had no office). */
  moveMailbox(
    domain: string,
    local: string,
    office: string,
  ): Promise<{ from: string; to: string; move: MailboxMove | null }>;
  mailboxMoves(domain: string, local: string): Promise<MailboxMove[]>;
  /** Moves from or to the office, unfinished or finished at `since` (ms) or later. */
  officeMoves(office: string, since: number): Promise<MailboxMove[]>;
  moveFileKeys(move: string): Promise<MoveFileKey[]>;
  inFlightBytes(move: string): Promise<number>;
  pushMoveFile(move: string, f: MoveFile): Promise<boolean>;
  unwrittenMoveFiles(move: string, limit: number): Promise<MoveFile[]>;
  markMoveFileWritten(move: string, folder: string, name: string): Promise<void>;
  /** Finished when nothing is left unwritten (or at once with a note: it ended otherwise). */
  finishMove(move: string, note?: string): Promise<boolean>;
  pruneMoveFiles(before: number): Promise<number>;
}

/** A directory's offices and mailbox homes (src/directory/offices.ts); a part of Directory. */
export interface OfficeDirectory {
  addOffice(o: NewOffice): Promise<Office>;
  listOffices(): Promise<Office[]>;
  /** Refused (DirectoryError) while mailboxes live there; false when there was none. */
  deleteOffice(name: string): Promise<boolean>;
  /** null when there is no such mailbox. */
  mailboxOffice(domain: string, local: string): Promise<string | null>;
  /** Sets a mailbox's home office (which must exist). */
  setMailboxOffice(domain: string, local: string, office: string): Promise<void>;
  /** Every mailbox's home, for the servers' cached table. */
  mailboxHomes(): Promise<MailboxHome[]>;
  /**
   * Calls `onChange` with the table's name whenever any process changes domains, mailboxes' offices, aliases or offices (PostgreSQL
   * LISTEN; `onError` when the listening connection is lost). null: this backend has no notifications (SQLite).
   */
  watchChanges(
    onChange: (table: string) => void,
    onError: (err: Error) => void,
  ): Promise<{ close(): Promise<void> } | null>;
}
