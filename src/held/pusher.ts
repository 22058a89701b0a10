// The held-mail pusher of `quail start`: every interval, on ETRN or flush, and soon after new mail for a reachable domain.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { bounceConfigFrom } from '../bounce/index.js';
import { errText } from '../core/index.js';
import type { Control } from '../control/index.js';
import type { NewMessage } from '../queue/index.js';
import { classifierFor } from '../remote/index.js';
import { parseHostPort, tcpConnector } from './connect.js';
import { lockFile } from './lock.js';
import { DEFAULT_LIFETIME, pushMaildir, type Connector, type PushResult } from './push.js';
import { findHeld, listHeld, type HeldDomain } from './registry.js';

export interface PusherDeps {
  readonly root: string;
  /** A fresh control snapshot (read per push). */
  readonly control: () => Control;
  /** Bounces go into quail's own queue. */
  readonly inject: (m: NewMessage) => Promise<string>;
  /** Wake-ups of the queue (`new` after each commit, `flush [domain]`), as the scheduler gets them. */
  readonly watch: (listener: (what: 'new' | 'flush', domain?: string) => void) => () => void;
  readonly log: (event: 'held.push' | 'held.error', fields: Readonly<Record<string, unknown>>) => void;
  /** Seconds between pushes of every held domain with mail waiting (control/heldinterval, default 120). */
  readonly intervalSeconds?: number;
  readonly now?: () => number;
  /** Where to connect for a domain (default: its RELAYHOST over TCP). */
  readonly connectorFor?: (h: HeldDomain, control: Control) => Connector;
}

/** How long after a queued message the held Maildirs are looked at (its local delivery comes first). */
const NEW_MAIL_DELAY_MS = 2000;

/** What the pusher remembers of a domain's last push (for `quail status` and the new-mail rule). */
export interface LastPush {
  readonly at: number;
  readonly reached: boolean;
  readonly result: string;
  /** Messages still waiting after it. */
  readonly left: number;
}

/** The outcome of asking for a push: it ran, or another push (this process or a script) holds the lock. */
export type PushOutcome = { kind: 'pushed'; result: PushResult } | { kind: 'busy' } | { kind: 'not-held' };

/**
 * One per `quail start` (in the send child when root): pushes each held domain to its RELAYHOST. One push per
 * domain at a time across processes: RELAYHOST's flock, taken without waiting (a busy lock skips the push).
 */
export class HeldPusher {
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private readonly last = new Map<string, LastPush>();
  /** When each domain's timed push was last due (its interval counts from there). */
  private readonly lastTry = new Map<string, number>();
  private started = 0;
  private readonly running = new Map<string, Promise<PushOutcome>>();
  private stopped = false;
  private soon: NodeJS.Timeout | undefined;

  constructor(private readonly d: PusherDeps) {}

  private get interval(): number {
    return this.d.intervalSeconds ?? 120;
  }

  private now(): number {
    return this.d.now?.() ?? Math.floor(Date.now() / 1000);
  }

  start(): void {
    this.unwatch = this.d.watch((what, domain) => {
      if (what === 'flush') void this.pushAll(domain === undefined ? undefined : [domain]);
      else this.newMail();
    });
    this.started = this.now();
    const tick = (): void => {
      const next = this.timedRound();
      if (!this.stopped) this.timer = setTimeout(tick, next * 1000).unref();
    };
    this.timer = setTimeout(tick, this.nextDelay(this.heldNow()) * 1000).unref();
  }

  private heldNow(): HeldDomain[] {
    try {
      return listHeld(this.d.root, this.d.control());
    } catch (err) {
      this.d.log('held.error', { error: errText(err) });
      return [];
    }
  }

  private every(h: HeldDomain): number {
    return h.settings.every ?? this.interval;
  }

  /** Seconds until the next domain is due (at most the global interval, at least one second). */
  private nextDelay(held: readonly HeldDomain[]): number {
    const t = this.now();
    let next = this.interval;
    for (const h of held) next = Math.min(next, (this.lastTry.get(h.domain) ?? this.started) + this.every(h) - t);
    return Math.max(1, next);
  }

  /**
   * The timed pushes: each held domain whose own interval (HELD's `every`, else heldinterval) has passed. They are
   * started, not waited for: a customer whose server stalls (up to timeoutremote a reply) would otherwise hold back
   * every other domain's next push. A domain whose push still runs is not pushed twice (`push`).
   */
  private timedRound(): number {
    const held = this.heldNow();
    const t = this.now();
    const due = held.filter((h) => t - (this.lastTry.get(h.domain) ?? this.started) >= this.every(h));
    for (const h of due) this.lastTry.set(h.domain, t);
    if (due.length > 0) void this.pushAll(due.map((h) => h.domain));
    return this.nextDelay(held);
  }

  /** Stops the timer and wake-ups; waits for pushes in progress (each message is settled before it ends). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.soon) clearTimeout(this.soon);
    this.unwatch?.();
    await Promise.allSettled([...this.running.values()]);
  }

  lastPush(domain: string): LastPush | undefined {
    return this.last.get(domain);
  }

  /** Pushes `domains` (default every held domain) that have mail waiting. */
  async pushAll(domains?: readonly string[]): Promise<void> {
    let held: HeldDomain[];
    try {
      const control = this.d.control();
      held =
        domains === undefined
          ? listHeld(this.d.root, control)
          : domains.flatMap((x) => findHeld(this.d.root, control, x) ?? []);
    } catch (err) {
      this.d.log('held.error', { error: errText(err) });
      return;
    }
    await Promise.all(held.map(async (h) => ((await waiting(h.maildir)) > 0 ? this.push(h.domain) : undefined))).catch(
      (err: unknown) => this.d.log('held.error', { error: errText(err) }),
    );
  }

  /**
   * A message was queued: its local delivery into a held Maildir follows within moments, so the check waits a
   * little (one timer however many messages arrive meanwhile).
   */
  private newMail(): void {
    if (this.soon !== undefined || this.stopped) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.pushReachable();
    }, NEW_MAIL_DELAY_MS).unref();
  }

  /** New mail: push the domains that were reachable within the last interval and have mail waiting. */
  private async pushReachable(): Promise<void> {
    const recent = [...this.last].filter(([, l]) => l.reached);
    const grown = await Promise.all(
      recent.map(async ([dom, l]) => {
        const h = findHeld(this.d.root, this.d.control(), dom);
        if (h === undefined || l.at < this.now() - this.every(h)) return [];
        return (await waiting(h.maildir)) > l.left ? [dom] : [];
      }),
    ).catch(() => []);
    const domains = grown.flat();
    if (domains.length > 0) await this.pushAll(domains);
  }

  /** One push of `domain` now, unless one is running (here or in another process). */
  push(domain: string): Promise<PushOutcome> {
    const running = this.running.get(domain);
    if (running) return running.then(() => ({ kind: 'busy' }) as const);
    const p = this.pushNow(domain).finally(() => this.running.delete(domain));
    this.running.set(domain, p);
    return p;
  }

  private async pushNow(domain: string): Promise<PushOutcome> {
    const control = this.d.control();
    const h = findHeld(this.d.root, control, domain);
    if (h === undefined) return { kind: 'not-held' };
    let lock: Awaited<ReturnType<typeof lockFile>>;
    try {
      lock = await lockFile(h.lockPath);
    } catch (err) {
      this.d.log('held.error', { domain, error: `cannot lock ${h.lockPath}: ${errText(err)}` });
      return { kind: 'busy' };
    }
    if (lock === 'busy') {
      this.d.log('held.push', { domain, result: 'busy' });
      return { kind: 'busy' };
    }
    try {
      const result = await pushMaildir({
        dir: h.maildir,
        prefix: h.prefix,
        connect: this.d.connectorFor?.(h, control) ?? relayConnector(h, control),
        servername: parseHostPort(h.relayhost).host,
        helo: control.single('helohost').value ?? 'localhost',
        tls: { mode: 'may' },
        remoteMs: control.number('timeoutremote').value * 1000,
        classify: classifierFor(control.list('replyrules').value),
        lifetime: DEFAULT_LIFETIME,
        bounce: { config: bounceConfigFrom(control), inject: this.d.inject },
        now: () => this.now(),
      });
      const count = (f: string): number => result.messages.filter((m) => m.fate === f).length;
      const summary = result.stopped ?? `${count('sent')} sent, ${count('bounced')} bounced, ${count('kept')} kept`;
      const left = await waiting(h.maildir);
      this.remember(h, { at: this.now(), reached: result.reached, result: summary, left });
      this.d.log('held.push', {
        domain,
        result: result.stopped === undefined ? 'done' : 'stopped',
        sent: count('sent'),
        bounced: count('bounced'),
        kept: count('kept'),
        ...(result.stopped !== undefined ? { why: result.stopped } : {}),
      });
      return { kind: 'pushed', result };
    } catch (err) {
      this.remember(h, { at: this.now(), reached: false, result: errText(err), left: 0 });
      this.d.log('held.error', { domain, error: errText(err) });
      return { kind: 'pushed', result: { reached: false, stopped: errText(err), messages: [] } };
    } finally {
      await lock.close();
    }
  }

  /** In memory (the new-mail rule) and in the home's LASTPUSH (quail status, quail held show, other processes). */
  private remember(h: HeldDomain, l: LastPush): void {
    this.last.set(h.domain, l);
    writeLastPush(h.home, l);
  }
}

/**
 * LASTPUSH in the held home: one line of JSON, written atomically. A home the pusher may not write (a seed's
 * root-owned /home/serialmail/<domain>) keeps no record: the push itself is unaffected, its event is in the log.
 */
export function writeLastPush(home: string, l: LastPush): void {
  const path = join(home, 'LASTPUSH');
  const tmp = `${path}.tmp.${process.pid}`;
  try {
    writeFileSync(tmp, `${JSON.stringify(l)}\n`, { mode: 0o644 });
    renameSync(tmp, path);
  } catch {
    rmSync(tmp, { force: true });
  }
}

/** The home's LASTPUSH, or undefined when there is none (never pushed, or not writable) or it is damaged. */
export function readLastPush(home: string): LastPush | undefined {
  try {
    const v = JSON.parse(readFileSync(join(home, 'LASTPUSH'), 'utf8')) as Partial<LastPush>;
    if (typeof v.at !== 'number' || typeof v.reached !== 'boolean' || typeof v.result !== 'string') return undefined;
    return { at: v.at, reached: v.reached, result: v.result, left: typeof v.left === 'number' ? v.left : 0 };
  } catch {
    return undefined;
  }
}

function relayConnector(h: HeldDomain, control: Control): Connector {
  const { host, port } = parseHostPort(h.relayhost);
  return tcpConnector(
    host,
    port,
    control.number('timeoutconnect').value * 1000,
    control.single('outgoingip').value ?? undefined,
  );
}

/** Messages waiting in a held Maildir (new/ and cur/). */
export async function waiting(maildir: string): Promise<number> {
  let n = 0;
  for (const sub of ['new', 'cur'])
    n += (await readdir(`${maildir}/${sub}`).catch(() => [])).filter((x) => !x.startsWith('.')).length;
  return n;
}

/** The oldest waiting message's age basis: the smallest delivery time in the Maildir names (unix seconds). */
export async function oldest(maildir: string): Promise<number | undefined> {
  let min: number | undefined;
  for (const sub of ['new', 'cur']) {
    for (const n of await readdir(`${maildir}/${sub}`).catch(() => [] as string[])) {
      const t = Number(/^([0-9]+)/.exec(n)?.[1] ?? NaN);
      const v = Number.isFinite(t) ? t : Math.floor((await stat(`${maildir}/${sub}/${n}`)).mtimeMs / 1000);
      if (min === undefined || v < min) min = v;
    }
  }
  return min;
}
