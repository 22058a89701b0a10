// pop3d contracts: the authenticator, the mailbox store and its mailboxes, the event log (plain data across them).
import type { Readable } from 'node:stream';

export interface ClientInfo {
  readonly ip: string;
  readonly tls: boolean;
}

export interface Account {
  /** The Maildir (the directory holding new/, cur/, tmp/). */
  readonly maildir: string;
  /** The canonical login (user@domain), used for locking, logs and the throttle. */
  readonly login: string;
  readonly uid?: number;
  readonly gid?: number;
}

/** The directory's side of a login; `null` = refused (unknown user, wrong password, POP disabled: never said which). */
export interface Pop3Authenticator {
  authenticate(login: string, password: string, client: ClientInfo): Promise<Account | null>;
  /** Optional: records the last-login time in the directory after a successful login. */
  recordLogin?(login: string, client: ClientInfo, at: Date): Promise<void>;
  /** Optional: the name the failed-login throttle counts `login` under (alias domains resolved); else `login`. */
  throttleKey?(login: string): Promise<string>;
}

export interface MessageInfo {
  /** 1-based message number, as in the protocol. */
  readonly n: number;
  /** Size as sent: CRLF line ends, without dot-stuffing (RFC 1939 section 5, LIST). */
  readonly size: number;
  /** RFC 1939 section 7: 1-70 characters in 0x21-0x7E; here the Maildir unique name. */
  readonly uid: string;
}

/** A mailbox opened for one session: a snapshot taken at open time (later arrivals wait for the next session). */
export interface Mailbox {
  list(): readonly MessageInfo[];
  /**
   * The message as sent on the wire, streamed (any size; the server takes this way when readStored says the message
   * is too large to send from memory): CRLF, dot-stuffed, without the final ".CRLF". `bodyLines` = TOP:
   * the headers, the blank line and at most that many body lines. Rejects, before anything is sent, when the
   * message cannot be opened (removed by another client).
   */
  retrieve(n: number, bodyLines?: number): Promise<Readable>;
  /**
   * The message's bytes as stored (LF line ends, no dot-stuffing) when it is small enough to send from memory, else
   * undefined (stream it with retrieve). The view is valid only until the next call: the caller converts it before it
   * awaits anything. Throws, before anything is sent, when the message cannot be read.
   */
  readStored(n: number): Buffer | undefined;
  /** Performs the deletions marked by the engine (the UPDATE state); throws a QuailError when it cannot. */
  commit(deleted: readonly number[]): Promise<CommitResult>;
  /** Releases the mailbox (lock) without deleting anything. Idempotent; also called after commit. */
  close(): void;
}

export interface CommitResult {
  readonly deleted: number;
  /** Deleted messages that were already gone (another client removed them). */
  readonly missing: number;
  /** maildirsize could not be updated (the deletions stand; logged). */
  readonly quotaError?: string;
}

export type OpenResult =
  | { readonly kind: 'ok'; readonly mailbox: Mailbox }
  | { readonly kind: 'in-use' }
  | { readonly kind: 'temporary'; readonly reason: string };

export interface MailboxStore {
  open(account: Account): Promise<OpenResult>;
}

/**
 * What the server knows about one client before it says anything (quail start: control/tcp.pop3 and
 * control/defaultdomain, read at each connection). Plain data, so the rules can come from anywhere.
 */
export interface Pop3ClientRules {
  /** Refuse the connection (a tcprules `deny`). */
  readonly deny?: boolean;
  /** USER/PASS and AUTH PLAIN allowed before TLS for this client (QUAIL_CLEARAUTH="1"). */
  readonly clearAuth?: boolean;
  /** Domain for bare login names (vpopmail's default domain); overrides the server's `defaultDomain`. */
  readonly defaultDomain?: string | undefined;
}

/** The events a POP3 server and its sessions log (src/start's catalogue documents each; `pop3d.*` is the process). */
export type Pop3EventName =
  'pop3.refused' | 'pop3.error' | 'pop3.warning' | 'pop3.login' | 'pop3.session' | 'pop3.stress';

/** Same shape as smtpd's SessionEventLog, so `quail start` passes one event log to both. */
export type Pop3EventLog = (event: Pop3EventName, fields: Readonly<Record<string, unknown>>) => void;
