// The scheduler's settings, read once from a Control snapshot (qmail-send reads them at start, 0.1).
import { bounceConfigFrom, type BounceConfig } from '../bounce/index.js';
import type { Channel } from '../core/index.js';
import type { Control } from '../control/index.js';
import { routeControlFrom, type RouteControl } from '../route/index.js';

export interface SchedulerSettings {
  /** The concurrency limit of each channel (channels.ts). */
  readonly concurrency: Readonly<Record<Channel, number>>;
  /** queuelifetime in seconds (F.3). */
  readonly lifetime: number;
  /** qmail-start's argument (control/defaultdelivery), handed to every local delivery. */
  readonly defaultDelivery: string;
  readonly bounce: BounceConfig;
  readonly route: RouteControl;
}

/**
 * Throws (temporary) when controls cannot be read, or neither locals nor me exists (G.1, loc-020). `concurrency` is
 * channels.ts's `concurrencyFrom` of the same snapshot (the channel table knows which file limits which channel).
 */
export function settingsFrom(control: Control, concurrency: Readonly<Record<Channel, number>>): SchedulerSettings {
  return {
    concurrency,
    lifetime: control.number('queuelifetime').value,
    defaultDelivery: control.raw('defaultdelivery') ?? './Maildir/\n',
    bounce: bounceConfigFrom(control),
    route: routeControlFrom(control),
  };
}

/** SIGHUP (0.1): only locals and virtualdomains are re-read; percenthack and envnoathost stay. */
export function reloadedRoute(old: RouteControl, control: Control): RouteControl {
  const fresh = routeControlFrom(control);
  return { ...fresh, envnoathost: old.envnoathost, percenthack: old.percenthack };
}
