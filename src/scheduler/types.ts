// What the scheduler is given (every dependency injected, so tests drive it with real small parts).
import type { DeliveryResult } from '../core/index.js';
import type { Control } from '../control/index.js';
import type { LocalJob, LocalResult } from '../local/types.js';
import type { QueueStore } from '../queue/types.js';
import type { RemoteJob } from '../remote/types.js';
import type { Assignment, PasswdSource } from '../users/types.js';

/**
 * qmail-send's log lines as events (README "Log"; src/start logs them as `send.<name>` and its catalogue documents
 * each): new, info, starting delivery, delivery, forward, bounce, triple bounce, end, reload, warning, alert.
 */
export type SchedulerEventName =
  | 'new'
  | 'info'
  | 'start'
  | 'delivery'
  | 'forward'
  | 'bounce'
  | 'triple_bounce'
  | 'end'
  | 'reload'
  | 'warning'
  | 'alert';

/** The event log: one structured event per qmail-send log line. */
export interface SchedulerLogger {
  event(name: SchedulerEventName, fields: Record<string, string | number>): void;
}

/** Timers in real milliseconds; tests pass ones that never fire and drive the scheduler with a fake clock. */
export interface SchedulerTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export type LookupAssignment = (q: { root: string; local: string; passwd: PasswdSource }) => Assignment;

/** Where a recipient of a directory domain is delivered (issue 16, filled in by src/offices through src/start). */
export type OfficePlace =
  | { readonly kind: 'here' }
  | {
      readonly kind: 'office';
      readonly office: string;
      readonly host: string;
      readonly port: number;
      /** '' (STARTTLS when offered), `verify` or a CA file path (required). */
      readonly tls: string;
    }
  | { readonly kind: 'unknown'; readonly why: string };

/** The mailbox→office table as the scheduler sees it: synchronous answers from a cached copy. */
export interface OfficeRouter {
  /** Where `address` (the recipient before virtualdomains) goes; `here` for anything not an other office's mailbox. */
  place(address: string): OfficePlace;
  /** The office a queued message came from (received over SMTP from an office's address), or null. */
  cameFrom(meta: Readonly<Record<string, string>>): string | null;
}

export interface SchedulerDeps {
  /** The mail root (control/, users/, alias/, queue/). */
  readonly root: string;
  readonly queue: QueueStore;
  /** Makes a fresh Control snapshot (called at start and on reload). */
  readonly control: () => Control;
  /** Unix seconds. */
  readonly clock: () => number;
  readonly passwd: PasswdSource;
  readonly logger: SchedulerLogger;
  /** users: who delivers a local address (throws a temporary QuailError when it cannot tell). */
  readonly lookupAssignment: LookupAssignment;
  /** local: qmail-local for one recipient. */
  readonly local: (job: LocalJob) => Promise<LocalResult>;
  /** remote: qmail-remote for one recipient. */
  readonly remote: (job: RemoteJob) => Promise<DeliveryResult>;
  /** Default: the real setTimeout/clearTimeout. */
  readonly timers?: SchedulerTimers;
  /** Offices (control/office): mailboxes of other offices go to the office channel. Absent: all delivered here. */
  readonly offices?: OfficeRouter;
}

export type { Channel } from '../core/index.js';
