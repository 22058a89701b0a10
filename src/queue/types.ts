// The queue's contract: what the scheduler, smtpd, inject and the CLI may ask of the durable store.
import type { Readable } from 'node:stream';
import type { Channel, DeliveryStatus } from '../core/index.js';

/** A portable queue id (not an inode number): time-ordered, unique across machines. */
export type QueueId = string & { readonly __brand: 'QueueId' };

/** Who put the message in: decides qmail-queue's Received line (docs/QMAIL.md D.7.4, F.6). */
export type Injector =
  | { readonly kind: 'uid'; readonly uid: number } // "(qmail N invoked by uid U)"
  | { readonly kind: 'alias' } // "(qmail N invoked by alias)"
  | { readonly kind: 'bounce' } // "(qmail N invoked for bounce)"
  | { readonly kind: 'network' }; // smtpd: it writes its own Received line, the queue adds none

export interface NewMessage {
  /** Envelope sender as given ('' for bounces, '#@[]' for double bounces). */
  readonly sender: string;
  /** Envelope recipients, verbatim (routing happens in the scheduler, once). */
  readonly recipients: readonly string[];
  /** The message bytes (LF line ends), streamed: never buffered whole in memory by the queue. */
  readonly data: Readable | Buffer;
  readonly injector: Injector;
  /** Free-form facts kept with the message: parent id, origin ('smtp'|'inject'|'forward'|'bounce'), auth user, client ip. */
  readonly meta?: Readonly<Record<string, string>>;
  /** Named queue (policies); default 'default'. */
  readonly queueName?: string;
}

export type RecipientStatus = 'todo' | 'pending' | 'done' | 'failed';

export interface RecipientState {
  /** The recipient as injected. */
  readonly original: string;
  /** Set once, when the scheduler routes it (docs/QMAIL.md A: routing is fixed at that moment). */
  readonly channel?: Channel;
  /** The channel address (after envnoathost, percenthack, virtualdomains). */
  readonly address?: string;
  readonly status: RecipientStatus;
  readonly attempts: number;
  /** Unix seconds of the next attempt (pending only). */
  readonly nextAttempt?: number;
  /** Last result and its report text (qmail's exact text). */
  readonly lastResult?: DeliveryStatus;
  readonly lastReport?: string;
}

export interface QueuedMessage {
  readonly id: QueueId;
  /** Unix seconds when it was committed (qmail's birth, docs/QMAIL.md F.1). */
  readonly birth: number;
  readonly sender: string;
  readonly recipients: readonly RecipientState[];
  readonly held: boolean;
  /** Size of the message file in bytes. */
  readonly size: number;
  readonly meta: Readonly<Record<string, string>>;
  readonly queueName: string;
}

/**
 * A wake-up: 'new' after a commit, 'flush' to retry deferred recipients now (all, or only `domain`'s). A 'new' may name
 * the message (`id`) when the waker knows it (quail start's send child, from root's note): a scheduler then reads that
 * envelope instead of listing env/; other watchers take it as any 'new'.
 */
export type WakeListener = (what: 'new' | 'flush', domain?: string, id?: QueueId) => void;

/** The durable store. Every mutating call resolves only after its change is on disk (fsynced). */
export interface QueueStore {
  /** The commit point: resolves with the id only once message and envelope are durable. */
  inject(m: NewMessage): Promise<QueueId>;
  /** Every message id currently in the queue (from any process), oldest first. */
  ids(): Promise<QueueId[]>;
  read(id: QueueId): Promise<QueuedMessage | undefined>;
  /** Absolute path of the message file (read-only for deliveries; never modified after commit). */
  messagePath(id: QueueId): string;
  /** Durably replaces the recipient states (after routing, after each attempt). */
  updateRecipients(id: QueueId, recipients: readonly RecipientState[]): Promise<void>;
  /** Removes a message whose recipients are all done or failed (and whose bounce is queued). */
  remove(id: QueueId): Promise<void>;
  setHeld(id: QueueId, held: boolean): Promise<void>;
  /**
   * Calls `listener` when a message is committed by this or another process (lossy: a missed wake-up is
   * harmless, the scheduler also scans). Returns an unsubscribe function.
   */
  watch(listener: WakeListener): () => void;
  /**
   * Sends a wake-up to a running scheduler (inject does it itself after each commit; `quail queue flush`
   * sends 'flush', optionally for one recipient domain).
   */
  trigger(what?: 'new' | 'flush', domain?: string): void;
}
