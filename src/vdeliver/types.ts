// The read-only directory vdeliver delivers through: the few lookups and fields it reads (src/directory implements it).
import type { UnknownPolicy } from './line.js';

/** A domain as vdeliver reads it: its name, the policy for unknown addresses, the domain quota. */
export interface LookupDomain {
  /** Lowercase; for an alias domain, the domain it points to. */
  readonly name: string;
  readonly policy: UnknownPolicy;
  /** null: no domain quota. */
  readonly limits: { readonly quotaBytes: number | null };
}

/** A mailbox as vdeliver reads it. */
export interface LookupMailbox {
  readonly domain: string;
  /** Lowercase local part. */
  readonly local: string;
  /** Relative to the mail root: `domains/<domain>/<local>`; the Maildir is `<home>/Maildir/`. */
  readonly home: string;
  /** vpopmail's flags by name; vdeliver reads only `bounce-all`. */
  readonly flags: readonly string[];
  /** Forwarding targets set in the directory (addresses); empty: none. */
  readonly forward: readonly string[];
  /** With forwarding: also deliver into the mailbox's own Maildir. */
  readonly keepCopy: boolean;
  /** null: no quota. */
  readonly quotaBytes: number | null;
  readonly quotaMessages: number | null;
  /** The vacation reply (RFC 3834), when set; absent or null: none. */
  readonly vacation?: Vacation | null;
  /** The Maildir++ folder (`Junk`: `Maildir/.Junk/`) for mail quail's filter tagged as spam; absent or null: the inbox. */
  readonly spamFolder?: string | null;
}

/** An automatic reply to senders while the mailbox's owner is away: once per sender per `days` (RFC 3834). */
export interface Vacation {
  /** Empty: `Auto: ` and the original subject. */
  readonly subject: string;
  readonly body: string;
  /** At most one reply to the same sender in this many days (1 to 365). */
  readonly days: number;
}

/** An alias: its targets in order (`addr`/`&addr`, `/path/Maildir/` or `./dir/`, `|program`). */
export interface LookupAlias {
  readonly targets: readonly string[];
}

/** What one delivery to `local@domain` reads of the directory (MailboxLookup.lookupAddress). */
export interface AddressLookup {
  /** The domain, resolved as resolveDomain does (an alias domain gives the domain it points to). */
  readonly domain: LookupDomain;
  /** The alias `local` of that domain, when there is one. */
  readonly alias: LookupAlias | null;
  /**
   * Without an alias (an alias wins): the mailbox `local`; else, when `local` has a dash after its first character,
   * the mailbox before the dash.
   */
  readonly mailbox: LookupMailbox | null;
}

/**
 * Everything vdeliver asks of the directory, all reads; names are matched case-insensitively. Anything thrown is a
 * temporary failure of the delivery.
 */
export interface MailboxLookup {
  /**
   * The domain, alias and mailbox a delivery to `local@domain` needs, at once; null: no such domain. src/directory
   * answers it with one statement (one lock, one round trip); `lookupAddressByParts` answers it from the calls below.
   */
  lookupAddress(domain: string, local: string): Promise<AddressLookup | null>;
  /** The domain itself or the domain an alias domain points to. */
  resolveDomain(name: string): Promise<LookupDomain | null>;
  getAlias(domain: string, local: string): Promise<LookupAlias | null>;
  getMailbox(domain: string, local: string): Promise<LookupMailbox | null>;
  /** Every mailbox of the domain (the domain quota's scan of their Maildirs). */
  listMailboxes(domain: string): Promise<readonly LookupMailbox[]>;
}
