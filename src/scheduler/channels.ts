// qmail-send's delivery channels as a table: what differs between local and remote is one entry each, so a new
// channel (held mail, offices) is one more entry (and its name in src/address's CHANNELS, which the queue checks).
import { CHANNELS, withCode, type Channel, type DeliveryResult } from '../core/index.js';
import type { Control, ControlName } from '../control/index.js';
import { attemptLocal, attemptRemote, fromError, type DeliveryContext } from './deliver.js';
import { attemptOffice } from './office.js';
import type { MessageState } from './state.js';

export interface ChannelSpec {
  /**
   * The control file with the channel's concurrency limit (qmail's concurrencylocal / concurrencyremote: read at
   * start, capped by the catalogue's max; 0 starts no delivery on the channel, as in qmail-send, whose mail waits
   * until a restart with a higher limit). A delivery holds one of these slots until its result is in.
   */
  readonly concurrency: ControlName;
  /** chanskip (docs/QMAIL.md F.2): attempts at about birth + (skip·k)². */
  readonly skip: number;
  /** One delivery of one recipient's channel address; what it throws becomes a result (attemptDelivery). */
  readonly attempt: (ctx: DeliveryContext, msg: MessageState, address: string) => Promise<DeliveryResult>;
}

export const CHANNEL_TABLE: { readonly [C in Channel]: ChannelSpec } = {
  local: { concurrency: 'concurrencylocal', skip: 10, attempt: attemptLocal },
  remote: { concurrency: 'concurrencyremote', skip: 20, attempt: attemptRemote },
  // Inter-office SMTP shares remote's limit and retry schedule (a slot count of its own, though).
  office: { concurrency: 'concurrencyremote', skip: 20, attempt: attemptOffice },
};

/** One value per channel, in CHANNELS order. */
function perChannel<T>(make: (c: Channel) => T): Record<Channel, T> {
  return Object.fromEntries(CHANNELS.map((c) => [c, make(c)])) as Record<Channel, T>;
}

/**
 * The concurrency limit of every channel (read once at start, 0.1). 0 is kept (docs/QMAIL.md F.8): qmail-send
 * starts no delivery on a channel whose limit is 0. Throws ControlReadError when unreadable.
 */
export function concurrencyFrom(control: Control): Readonly<Record<Channel, number>> {
  return perChannel((c) => control.number(CHANNEL_TABLE[c].concurrency).value);
}

/** Runs one delivery of `address` on `channel`; never throws. The report's `(#x.y.z)` becomes `code` here, once. */
export async function attemptDelivery(
  ctx: DeliveryContext,
  msg: MessageState,
  channel: Channel,
  address: string,
): Promise<DeliveryResult> {
  let r: DeliveryResult;
  try {
    r = await CHANNEL_TABLE[channel].attempt(ctx, msg, address);
  } catch (err) {
    r = fromError(err);
  }
  return withCode(r);
}
