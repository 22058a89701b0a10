// Each named queue's own delivery slots per channel: a queue whose deliveries hang never holds another's slots.
import { CHANNELS, type Channel } from '../core/index.js';
import type { Task } from './task.js';

export interface Lane {
  readonly queue: string;
  readonly channel: Channel;
  /** Tasks taken up, waiting for a slot of this queue and channel. */
  waiting: Task[];
  /** Deliveries holding a slot now. */
  running: number;
}

/** The lanes by queue name, made on first use; the `default` queue's are qmail's two (local, remote). */
export class Lanes {
  private readonly byQueue = new Map<string, Record<Channel, Lane>>();

  lane(queue: string, channel: Channel): Lane {
    let q = this.byQueue.get(queue);
    if (q === undefined) {
      const make = (c: Channel): Lane => ({ queue, channel: c, waiting: [], running: 0 });
      q = Object.fromEntries(CHANNELS.map((c) => [c, make(c)])) as Record<Channel, Lane>;
      this.byQueue.set(queue, q);
    }
    return q[channel];
  }

  /** Every lane, in the order queues were first seen, channels in CHANNELS order. */
  *all(): Generator<Lane> {
    for (const q of this.byQueue.values()) for (const c of CHANNELS) yield q[c];
  }

  /** Whether a lane has a task waiting and a free slot (a lane with limit 0 waits for a restart: F.8). */
  anyStartable(limit: (lane: Lane) => number): boolean {
    for (const l of this.all()) if (l.waiting.length > 0 && l.running < limit(l)) return true;
    return false;
  }
}
