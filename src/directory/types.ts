// The directory contract: domains, mailboxes and aliases as plain data, and the Promise-based Directory interface.
import type { MailboxLookup, UnknownPolicy } from '../vdeliver/index.js';

/** What happens to mail for an address of the domain that has no mailbox and no alias: vdeliver's policy language. */
export type { UnknownPolicy };

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
}

/** An address of a domain whose mail goes to targets: `addr`/`&addr` (forward), `/path/Maildir/` or `./x/`, `|program`. */
export interface Alias {
  readonly domain: string;
  readonly local: string;
  readonly targets: readonly string[];
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
}

/**
 * One directory, two backends (SQLite, PostgreSQL). Names are matched case-insensitively (stored lowercase).
 * Errors: DirectoryError (permanent: the request is wrong) or anything else (temporary). Its lookups are the
 * read-only interface vdeliver delivers through (MailboxLookup).
 */
export interface Directory extends MailboxLookup, OfficeDirectory {
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
  deleteMailbox(domain: string, local: string): Promise<boolean>;

  /** Adds targets to the alias (creating it); duplicates are ignored. */
  addAlias(domain: string, local: string, targets: readonly string[]): Promise<Alias>;
  getAlias(domain: string, local: string): Promise<Alias | null>;
  listAliases(domain: string): Promise<Alias[]>;
  /** Removes one target, or the whole alias when target is undefined; false when nothing matched. */
  deleteAlias(domain: string, local: string, target?: string): Promise<boolean>;
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
