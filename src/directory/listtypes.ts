// Mailing lists as the directory stores them (migration 6): the list, its options and secret, its people.

/** A list's settings (ezmlm's flags): what posting needs and what a post gets. */
export interface ListOptions {
  /** Only subscribers (and moderators) may post; others get a bounce saying so. */
  readonly membersOnly: boolean;
  /** Every post waits for a moderator's approval. */
  readonly moderated: boolean;
  /** Put in front of the Subject of each post (e.g. `[team]`); empty: none. */
  readonly subjectPrefix: string;
  /** `Reply-To: the list` on each post. */
  readonly replyToList: boolean;
  /** Posts larger than this many bytes are refused; null: no limit. */
  readonly maxBytes: number | null;
  /** One line for the help message and `quail list show`. */
  readonly description: string;
}

export const DEFAULT_LIST_OPTIONS: ListOptions = {
  membersOnly: false,
  moderated: false,
  subjectPrefix: '',
  replyToList: false,
  maxBytes: null,
  description: '',
};

export interface MailingList {
  /** Lowercase domain (a directory domain). */
  readonly domain: string;
  /** Lowercase list name: the local part of its address. */
  readonly local: string;
  /** The per-list secret the cookies (confirmation, moderation, one-click unsubscribe) are made with. */
  readonly secret: string;
  readonly options: ListOptions;
  readonly created: Date;
}

/** Owners are logins (mailbox addresses) who manage the list; moderators approve posts; subscribers receive them. */
export type ListRole = 'subscriber' | 'owner' | 'moderator';
export const LIST_ROLES: readonly ListRole[] = ['subscriber', 'owner', 'moderator'];

export interface ListMember {
  /** Lowercase address. */
  readonly address: string;
  readonly role: ListRole;
  readonly added: Date;
  /** Bounces counted since the last success (ezmlm's bounce handling). */
  readonly bounces: number;
  readonly firstBounce: Date | null;
  readonly lastBounce: Date | null;
  /** When the probe (the warning, then the last try) was sent; null: none pending. */
  readonly probeSent: Date | null;
}

/** The directory's list tables: every name is matched lowercase. Errors as the Directory's. */
export interface ListTable {
  create(domain: string, local: string, secret: string, options?: Partial<ListOptions>): Promise<MailingList>;
  get(domain: string, local: string): Promise<MailingList | null>;
  /** Every list, or a domain's. */
  all(domain?: string): Promise<MailingList[]>;
  update(domain: string, local: string, patch: Partial<ListOptions>): Promise<MailingList>;
  /** Deletes the list and its people; false when there was none. */
  remove(domain: string, local: string): Promise<boolean>;
  /** false: already there. */
  addMember(domain: string, local: string, role: ListRole, address: string): Promise<boolean>;
  /** false: not there. */
  removeMember(domain: string, local: string, role: ListRole, address: string): Promise<boolean>;
  members(domain: string, local: string, role: ListRole): Promise<ListMember[]>;
  getMember(domain: string, local: string, role: ListRole, address: string): Promise<ListMember | null>;
  /** One more bounce for a subscriber (first/last times kept); null when not subscribed. */
  recordBounce(domain: string, local: string, address: string, at: number): Promise<ListMember | null>;
  /** The probe was sent at `at` (null: forget it and the bounces: the address works again). */
  setProbe(domain: string, local: string, address: string, at: number | null): Promise<void>;
  /** May the domain's users create lists of their own (migration 9)? false when never set. */
  usersMayCreate(domain: string): Promise<boolean>;
  setUsersMayCreate(domain: string, on: boolean): Promise<void>;
}
