// The scheduler's settings, read once from a Control snapshot (qmail-send reads them at start, 0.1), and each named
// queue's (control/queues: the same settings with that queue's options laid over them).
import { bounceConfigFrom, type BounceConfig } from '../bounce/index.js';
import { asciiLower, QuailError, type Channel } from '../core/index.js';
import type { Control } from '../control/index.js';
import { DEFAULT_QUEUE, queuesFrom, rulesFrom, type QueuePolicy, type QueueRules } from '../queues/index.js';
import { routeControlFrom, type RouteControl } from '../route/index.js';
import type { QueueRemotePolicy } from '../remote/index.js';

/** What differs between queues: slots, lifetime, retries, bounces, and how remote deliveries go out. */
export interface QueueSettings {
  readonly name: string;
  /** The concurrency limit of each channel, this queue's own slots (channels.ts). */
  readonly concurrency: Readonly<Record<Channel, number>>;
  /** queuelifetime in seconds (F.3). */
  readonly lifetime: number;
  /** Seconds after the 1st, 2nd ... deferral (last repeats); undefined: qmail's schedule (F.2). */
  readonly retry: readonly number[] | undefined;
  /** null: this queue sends no bounces (failures are logged only). */
  readonly bounce: BounceConfig | null;
  /** Outgoing IP, HELO host and smtproutes of this queue; empty for `default` (the control files decide). */
  readonly remote: QueueRemotePolicy;
}

export interface SchedulerSettings {
  /** The concurrency limit of each channel (channels.ts) — of the default queue. */
  readonly concurrency: Readonly<Record<Channel, number>>;
  /** queuelifetime in seconds (F.3) — of the default queue. */
  readonly lifetime: number;
  /** qmail-start's argument (control/defaultdelivery), handed to every local delivery. */
  readonly defaultDelivery: string;
  /** The default queue's bounces. */
  readonly bounce: BounceConfig;
  readonly route: RouteControl;
  /** Every queue by name, `default` included (control/queues). */
  readonly queues: ReadonlyMap<string, QueueSettings>;
  /** control/queuerules: the queue of the bounces and forwards the scheduler queues itself. */
  readonly rules: QueueRules;
}

/**
 * Throws (temporary) when controls cannot be read, or neither locals nor me exists (G.1, loc-020). `concurrency` is
 * channels.ts's `concurrencyFrom` of the same snapshot (the channel table knows which file limits which channel).
 */
export function settingsFrom(control: Control, concurrency: Readonly<Record<Channel, number>>): SchedulerSettings {
  const lifetime = control.number('queuelifetime').value;
  const bounce = bounceConfigFrom(control);
  return {
    concurrency,
    lifetime,
    defaultDelivery: control.raw('defaultdelivery') ?? './Maildir/\n',
    bounce,
    route: routeControlFrom(control),
    ...namedQueues(control, { concurrency, lifetime, bounce }),
  };
}

/** control/queues and control/queuerules (at start and on SIGHUP); the default queue is the control files alone. */
export function namedQueues(
  control: Control,
  base: Pick<SchedulerSettings, 'concurrency' | 'lifetime' | 'bounce'>,
): Pick<SchedulerSettings, 'queues' | 'rules'> {
  const queues = new Map<string, QueueSettings>([
    [
      DEFAULT_QUEUE,
      {
        name: DEFAULT_QUEUE,
        concurrency: base.concurrency,
        lifetime: base.lifetime,
        retry: undefined,
        bounce: base.bounce,
        remote: {},
      },
    ],
  ]);
  for (const p of queuesFrom(control).queues.values()) queues.set(p.name, fromPolicy(p, base));
  return { queues, rules: rulesFrom(control) };
}

function fromPolicy(
  p: QueuePolicy,
  base: Pick<SchedulerSettings, 'concurrency' | 'lifetime' | 'bounce'>,
): QueueSettings {
  const b = base.bounce;
  const [dbTo, dbHost] = [
    b.doublebounceto.slice(0, b.doublebounceto.lastIndexOf('@')),
    b.doublebounceto.slice(b.doublebounceto.lastIndexOf('@') + 1),
  ];
  const bounce: BounceConfig | null =
    p.bounces === 'none'
      ? null
      : {
          bouncefrom: p.bouncefrom ?? b.bouncefrom,
          bouncehost: p.bouncehost ?? b.bouncehost,
          doublebounceto: `${p.doublebounceto ?? dbTo}@${p.doublebouncehost ?? dbHost}`,
          format: p.bounces ?? b.format,
        };
  return {
    name: p.name,
    concurrency: {
      local: p.concurrencylocal ?? base.concurrency.local,
      remote: p.concurrencyremote ?? base.concurrency.remote,
      office: p.concurrencyremote ?? base.concurrency.office,
    },
    lifetime: p.lifetime ?? base.lifetime,
    retry: p.retry,
    bounce,
    remote: {
      ...(p.outgoingip !== undefined ? { outgoingIp: p.outgoingip } : {}),
      ...(p.helohost !== undefined ? { helo: p.helohost } : {}),
      ...(p.routes !== undefined ? { routes: p.routes } : {}),
    },
  };
}

/** A message's queue settings; a queue no longer in control/queues is delivered with the default's (and logged). */
export function queueSettings(s: SchedulerSettings, name: string): QueueSettings {
  return s.queues.get(name) ?? (s.queues.get(DEFAULT_QUEUE) as QueueSettings);
}

/**
 * SIGHUP (0.1): only locals and virtualdomains are re-read; percenthack and envnoathost stay, and so does `me` as
 * locals' default: qmail-send's regetcontrols reads control/locals with the `me` control_init read at start, so a
 * changed control/me is not a local domain until a restart (a missing me at start: locals must exist).
 */
export function reloadedRoute(old: RouteControl, control: Control): RouteControl {
  const fresh = routeControlFrom(control);
  const kept = { envnoathost: old.envnoathost, percenthack: old.percenthack, me: old.me ?? null };
  if (fresh.localsSource?.file !== 'me') return { ...fresh, ...kept };
  if (kept.me === null)
    throw new QuailError(
      'unable to read controls: control/locals is missing and control/me was missing at start',
      true,
    );
  const me = asciiLower(kept.me);
  return { ...fresh, ...kept, locals: new Set([me]), localsSource: { file: 'me', lines: new Map([[me, 1]]) } };
}
