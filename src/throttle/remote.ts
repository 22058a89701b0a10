// One failed-login table for several processes: the process that keeps it (quail start's root) answers the others'
// requests (serveThrottle); each service process keeps a copy of what failed (RemoteThrottle), so that an attempt
// with nothing against it needs no round trip, and asks the table only for one that may be slowed.
import { LoginThrottle, type KnownEntry, type LoginAttempts, type ThrottleOptions } from './throttle.js';

/** A service process → the table's: ask the wait for a slowed attempt (`ask` numbers the answer), or tell a verdict. */
export type ThrottleRequest =
  | { readonly op: 'attempt'; readonly ask: number; readonly ip: string; readonly login: string }
  | { readonly op: 'failed'; readonly ip: string; readonly login: string }
  | { readonly op: 'succeeded'; readonly login: string; readonly ip?: string }
  | { readonly op: 'ended'; readonly ip: string; readonly login: string };

/** What every copy hears of another process's verdict. */
export type ThrottleNews =
  | { readonly op: 'failed'; readonly ip: string; readonly login: string }
  | { readonly op: 'succeeded'; readonly login: string };

/** The table's process → a service process: the wait it asked for, another's verdict, or everything known (at start). */
export type ThrottleReply =
  | { readonly op: 'wait'; readonly ask: number; readonly ms: number }
  | ThrottleNews
  | { readonly op: 'known'; readonly entries: readonly KnownEntry[] };

/** An answer not given in this time: the copy's own delay is used. */
const ASK_MS = 10_000;

const str = (v: unknown): v is string => typeof v === 'string';

/** A request or news as sent, or null when malformed (a process's garbage is ignored, never thrown). */
function parse(body: unknown): ThrottleRequest | null {
  if (typeof body !== 'object' || body === null) return null;
  const b = body as { readonly op?: unknown; readonly ask?: unknown; readonly ip?: unknown; readonly login?: unknown };
  if (!str(b.login)) return null;
  if (b.op === 'succeeded') return { op: 'succeeded', login: b.login, ...(str(b.ip) ? { ip: b.ip } : {}) };
  if (!str(b.ip)) return null;
  if (b.op === 'failed' || b.op === 'ended') return { op: b.op, ip: b.ip, login: b.login };
  if (b.op === 'attempt' && typeof b.ask === 'number') return { op: 'attempt', ask: b.ask, ip: b.ip, login: b.login };
  return null;
}

/**
 * The table's side of one request from a service process: the answer for that process (the wait it asked for), and
 * the news for every other process (a failure or a success, so that their copies know which attempts to ask about).
 */
export function serveThrottle(
  table: LoginThrottle,
  body: unknown,
): { readonly answer?: ThrottleReply; readonly news?: ThrottleNews } {
  const r = parse(body);
  if (r === null) return {};
  switch (r.op) {
    case 'attempt':
      return { answer: { op: 'wait', ask: r.ask, ms: table.attempt(r.ip, r.login) } };
    case 'failed':
      table.failed(r.ip, r.login);
      return { news: { op: 'failed', ip: r.ip, login: r.login } };
    case 'succeeded':
      table.succeeded(r.login, r.ip);
      return { news: { op: 'succeeded', login: r.login } };
    case 'ended':
      table.ended(r.ip, r.login);
      return {};
  }
}

/**
 * A service process's side of a table kept elsewhere. Failures and successes go to the table (`send`); the copy here
 * counts this process's and the others' (`heard`), only to tell whether an attempt may be slowed: one with no failure
 * of its address or login is answered 0 at once, with no round trip (a right password on a quiet server costs
 * nothing more); any other asks the table, which counts the attempts of every process at once. A table that does
 * not answer within 10 s (or cannot be sent to) leaves the copy's own delay.
 */
export class RemoteThrottle implements LoginAttempts {
  private readonly copy: LoginThrottle;
  private readonly waiting = new Map<number, (ms: number) => void>();
  private asks = 0;

  /** `send` returns false when the request cannot go (no table to ask). */
  constructor(
    private readonly send: (r: ThrottleRequest) => boolean,
    opts: ThrottleOptions = {},
  ) {
    this.copy = new LoginThrottle(opts);
  }

  attempt(ip: string, login: string): number | Promise<number> {
    const mine = this.copy.delayFor(ip, login);
    if (mine === 0) return 0;
    return new Promise((resolve) => {
      const ask = ++this.asks;
      const done = (ms: number): void => {
        clearTimeout(timer);
        this.waiting.delete(ask);
        resolve(ms);
      };
      const timer = setTimeout(() => done(mine), ASK_MS);
      this.waiting.set(ask, done);
      if (!this.send({ op: 'attempt', ask, ip, login })) done(mine);
    });
  }

  failed(ip: string, login: string): void {
    this.copy.failed(ip, login);
    this.send({ op: 'failed', ip, login });
  }

  succeeded(login: string, ip?: string): void {
    this.copy.succeeded(login);
    this.send({ op: 'succeeded', login, ...(ip === undefined ? {} : { ip }) });
  }

  ended(ip: string, login: string): void {
    this.send({ op: 'ended', ip, login });
  }

  /** What the table's process sent: an answer, another process's verdict, or everything known; malformed: ignored. */
  heard(body: unknown): void {
    if (typeof body !== 'object' || body === null) return;
    const b = body as {
      readonly op?: unknown;
      readonly ask?: unknown;
      readonly ms?: unknown;
      readonly entries?: unknown;
    };
    if (b.op === 'wait') {
      if (typeof b.ask === 'number' && typeof b.ms === 'number' && b.ms >= 0) this.waiting.get(b.ask)?.(b.ms);
    } else if (b.op === 'known') this.copy.learn(b.entries);
    else {
      const n = parse(body);
      if (n?.op === 'failed') this.copy.failed(n.ip, n.login);
      else if (n?.op === 'succeeded') this.copy.succeeded(n.login);
    }
  }
}
