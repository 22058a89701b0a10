// The remote-delivery contract (docs/QMAIL.md E): one recipient (qmail-remote) in, a DeliveryResult
// (src/address) out, its report qmail-remote's text, e.g. "127.0.0.1 accepted message.\nRemote host said: 250 ok\n".
import type { MapEntry } from '../control/index.js';

export interface RemoteJob {
  /** The channel address (the recipient, unchanged). */
  readonly recipient: string;
  /** Envelope sender after VERP expansion. */
  readonly sender: string;
  /** Absolute path of the queued message file (read-only). */
  readonly messagePath: string;
  /**
   * Header lines sent in front of the message (LF line ends, ASCII), e.g. the DKIM-Signature that start's
   * signer made; counted in SIZE. Recipients are grouped into one transaction only when it is the same.
   */
  readonly prefix?: string;
  /** What the queue recorded of the message's origin (origin, auth, relay): for the signer, not read here. */
  readonly meta?: Readonly<Record<string, string>>;
  /** The message's queue, when not `default`: its outgoing IP, HELO host and routes. */
  readonly policy?: QueueRemotePolicy;
  /**
   * A destination the caller chose (the scheduler's office channel: `office:NAME`); recipients are grouped into one
   * transaction only with the same `via`, since their routes differ from the domain's.
   */
  readonly via?: string;
}

/** A named queue's remote settings (control/queues), each replacing its control file for that queue's deliveries. */
export interface QueueRemotePolicy {
  /** Instead of control/outgoingip. */
  readonly outgoingIp?: string;
  /** Instead of control/helohost. */
  readonly helo?: string;
  /** Instead of control/smtproutes (parsed smtproutes lines). */
  readonly routes?: ReadonlyMap<string, MapEntry>;
  /** Instead of control/tlsdestinations (parsed lines): an office's TLS requirement. */
  readonly tlsdestinations?: ReadonlyMap<string, MapEntry>;
}
