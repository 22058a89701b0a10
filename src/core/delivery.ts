// The vocabulary of delivery: the channels, and the result of one attempt, the same for every channel (qmail-lspawn /
// qmail-rspawn's three outcomes).
import { reportCode, type EnhancedCode } from './outcome.js';

/**
 * The delivery channels a routed recipient is queued for (docs/QMAIL.md A), in qmail-send's order. The queue
 * stores and checks the name; src/scheduler has one entry per name in its channel table (the compiler asks for it).
 */
export const CHANNELS = ['local', 'remote', 'office'] as const;
export type Channel = (typeof CHANNELS)[number];

export function isChannel(x: unknown): x is Channel {
  return CHANNELS.some((c) => c === x);
}

/** success / deferral / failure, as qmail-send logs them (docs/QMAIL.md D.8.2, E.7). */
export const DELIVERY_STATUSES = ['success', 'deferral', 'failure'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/**
 * What a deliverer (local, remote, vdeliver) reports for one recipient. `report` is qmail's exact text;
 * `code` is the RFC 3463 code that text carries as `(#x.y.z)`, once parsed (`withCode`), when it carries one.
 */
export interface DeliveryResult {
  readonly result: DeliveryStatus;
  readonly report: string;
  readonly code?: EnhancedCode;
}

/** The result with its `code` taken from the report, unless it has one already (or the report carries none). */
export function withCode<R extends DeliveryResult>(r: R): R {
  if (r.code !== undefined) return r;
  const code = reportCode(r.report);
  return code === undefined ? r : { ...r, code };
}
