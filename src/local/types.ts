// The local-delivery contract (docs/QMAIL.md D): a job in, a report out. Never touches queue files.
import type { DeliveryResult } from '../core/index.js';

/** qmail-local's eight arguments plus what quail needs to run it. */
export interface LocalJob {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** Full local part including any virtual prefix, original case. */
  readonly local: string;
  readonly dash: string;
  readonly ext: string;
  readonly domain: string;
  /** Envelope sender after VERP expansion (F.7). */
  readonly sender: string;
  /** defaultdelivery (qmail-start's argument), e.g. "./Maildir/\n". */
  readonly defaultDelivery: string;
  /** Absolute path of the queued message file (read-only). */
  readonly messagePath: string;
  /** Mail root (for the alias user's home, PATH of programs, etc.). */
  readonly root: string;
  /**
   * How the account was found (src/users Assignment `via`), when the caller looked it up: users/cdb (`simple`,
   * `wildcard`) or the passwd fallback. The send child delivers its own account's cdb entries itself (src/start).
   */
  readonly via?: 'simple' | 'wildcard' | 'passwd' | 'alias';
}

/** A forward qmail-local would have injected itself: the scheduler queues it before reporting success. */
export interface ForwardRequest {
  /** NEWSENDER (D.4). */
  readonly sender: string;
  /** Targets verbatim, in order (D.6.5). */
  readonly recipients: readonly string[];
  /** Text to put before the queued message: DTLINE (D.7.4). */
  readonly prepend: string;
  /** uid of the delivering user, or 'alias' (qmail-queue's Received line, fw-011). */
  readonly injector: { readonly kind: 'uid'; readonly uid: number } | { readonly kind: 'alias' };
}

/**
 * success / deferral / failure as qmail-lspawn would report it (D.8.2); the report is program output, then
 * `did F+W+P\n`, or the failure text; plus any forward for the scheduler to queue.
 */
export interface LocalResult extends DeliveryResult {
  readonly forward?: ForwardRequest;
}
