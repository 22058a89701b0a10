// Failed-login slowdown: a delay that doubles with each failure, kept per client address and per login.
// Shared by pop3d (USER/PASS, AUTH PLAIN), smtpd (AUTH PLAIN/LOGIN), ODMR (AUTH) and the web admin: one policy for
// every password login, keyed on the login as the directory reads it (core's loginKey), whatever its spelling.
import { loginKey } from '../core/index.js';

/**
 * Failed logins in one session before it is ended (smtpd's 421, pop3d's end of the session, odmr's 421): one policy
 * for every password login, with the slowdown below.
 */
export const MAX_AUTH_FAILURES = 3;

export interface ThrottleOptions {
  /** Delay after the first failure (default 1 s); each further failure doubles it. */
  readonly baseMs?: number;
  /** Upper bound of the delay (default 30 s). */
  readonly maxMs?: number;
  /** Failures older than this are forgotten (default 15 minutes). */
  readonly forgetMs?: number;
  /** At most this many addresses and logins are remembered (default 100,000). */
  readonly maxKeys?: number;
  readonly clock?: () => number;
}

/**
 * What a password login asks before it checks and tells after (smtpd, pop3d, ODMR, the web admin): a LoginThrottle in
 * the process itself, or, in `quail start`'s service processes, a RemoteThrottle over the one table root keeps
 * (remote.ts). `attempt` may have to ask that table, so it may answer later.
 */
export interface LoginAttempts {
  /** The wait before checking this attempt (LoginThrottle.attempt). */
  attempt(ip: string, login: string): number | Promise<number>;
  failed(ip: string, login: string): void;
  succeeded(login: string, ip?: string): void;
  ended(ip: string, login: string): void;
}

/** One remembered key (`ip:…` or `login:…`), its failures and the time of the last: what another process copies. */
export type KnownEntry = readonly [key: string, failures: number, last: number];

interface Record {
  failures: number;
  last: number;
  /** Attempts begun (attempt) and not yet told failed or succeeded: each waits one more delay. */
  pending?: number;
}

/** Failure counts above this are not told apart when the table is pruned (the delay is long capped by then). */
const LEVELS = 32;

/**
 * `login` may be given in any spelling the directory takes (`JOE@example.com`, `joe%EXAMPLE.com`): it is counted
 * under `loginKey(login)`, so changing the case or writing `%` for `@` gives a guesser no fresh count.
 */
export class LoginThrottle implements LoginAttempts {
  /** In the order of their last update: the least recently updated first. */
  private readonly byKey = new Map<string, Record>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly forgetMs: number;
  private readonly maxKeys: number;
  private readonly clock: () => number;

  constructor(opts: ThrottleOptions = {}) {
    this.baseMs = opts.baseMs ?? 1000;
    this.maxMs = opts.maxMs ?? 30_000;
    this.forgetMs = opts.forgetMs ?? 15 * 60_000;
    this.maxKeys = Math.max(10, opts.maxKeys ?? 100_000);
    this.clock = opts.clock ?? Date.now;
  }

  /** The wait before answering a login attempt from `ip` for `login` (the larger of the two). */
  delayFor(ip: string, login: string): number {
    return Math.max(this.delayOf(`ip:${ip}`), this.delayOf(`login:${loginKey(login)}`));
  }

  /**
   * The wait before checking one login attempt, counting the attempts already waiting or being checked for the same
   * address or login: the k-th at once waits k delays. Without that, guesses sent in parallel all waited the same
   * delay (30 guesses in 33 s at the 30 s cap). Keys with no failure are not slowed, however many attempts run. The
   * attempt is over when failed() or succeeded() is told of it, or ended() when it was neither (a directory error).
   */
  attempt(ip: string, login: string): number {
    return Math.max(this.reserve(`ip:${ip}`), this.reserve(`login:${loginKey(login)}`));
  }

  /** An attempt ended without a verdict (the directory could not answer). */
  ended(ip: string, login: string): void {
    this.release(`ip:${ip}`);
    this.release(`login:${loginKey(login)}`);
  }

  failed(ip: string, login: string): void {
    this.ended(ip, login);
    this.bump(`ip:${ip}`);
    this.bump(`login:${loginKey(login)}`);
  }

  /**
   * A success forgets the login's failures, not the address's (one good account must not unlock guessing); `ip` ends
   * the attempt for the address too.
   */
  succeeded(login: string, ip?: string): void {
    if (ip !== undefined) this.release(`ip:${ip}`);
    this.byKey.delete(`login:${loginKey(login)}`);
  }

  private reserve(key: string): number {
    const base = this.delayOf(key);
    if (base === 0) return 0;
    const r = this.byKey.get(key);
    if (!r) return base;
    const ahead = r.pending ?? 0;
    r.pending = ahead + 1;
    return base * (ahead + 1);
  }

  private release(key: string): void {
    const r = this.byKey.get(key);
    if (r?.pending) r.pending--;
  }

  /** Every key remembered and not expired, least recently updated first (for a process that starts later: learn). */
  known(): KnownEntry[] {
    const now = this.clock();
    const out: KnownEntry[] = [];
    for (const [k, r] of this.byKey) if (now - r.last <= this.forgetMs) out.push([k, r.failures, r.last]);
    return out;
  }

  /** Takes another table's known() (anything malformed is skipped): its counts, where higher than this one's. */
  learn(entries: unknown): void {
    if (!Array.isArray(entries)) return;
    for (const e of entries as unknown[]) {
      if (!Array.isArray(e)) continue;
      const [key, failures, last] = e as unknown[];
      if (typeof key !== 'string' || !/^(ip|login):/.test(key)) continue;
      if (typeof failures !== 'number' || typeof last !== 'number' || !(failures >= 1) || !Number.isFinite(last))
        continue;
      const r = this.byKey.get(key);
      if (r !== undefined && r.failures >= failures) continue;
      this.byKey.delete(key);
      if (this.byKey.size >= this.maxKeys) this.prune(this.clock());
      this.byKey.set(key, {
        failures: Math.min(Math.floor(failures), 2 ** 30),
        last,
        ...(r?.pending ? { pending: r.pending } : {}),
      });
    }
  }

  /** How many addresses and logins are remembered now. */
  get size(): number {
    return this.byKey.size;
  }

  private delayOf(key: string): number {
    const r = this.byKey.get(key);
    if (!r) return 0;
    if (this.clock() - r.last > this.forgetMs) {
      this.byKey.delete(key);
      return 0;
    }
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(r.failures - 1, 30));
  }

  private bump(key: string): void {
    const now = this.clock();
    const r = this.byKey.get(key);
    this.byKey.delete(key); // set again below: the Map stays in the order of the last update
    if (r && now - r.last <= this.forgetMs) {
      r.failures++;
      r.last = now;
      this.byKey.set(key, r);
      return;
    }
    if (this.byKey.size >= this.maxKeys) this.prune(now);
    this.byKey.set(key, { failures: 1, last: now });
  }

  /**
   * The table is full: forget what has expired, then, down to nine tenths of the limit (so that the next prune is
   * thousands of failures away), what costs a guesser least to lose: the keys with the fewest failures first,
   * among them the least recently updated. Never everything: a flood of throwaway addresses or logins (one
   * failure each) pushes out only its own kind, and the counts of logins under attack stay. One pass to count,
   * one to drop: linear in the table, once per tenth of it.
   */
  private prune(now: number): void {
    for (const [k, r] of this.byKey) if (now - r.last > this.forgetMs) this.byKey.delete(k);
    const target = Math.floor(this.maxKeys * 0.9);
    const excess = this.byKey.size - target;
    if (excess <= 0) return;
    const level = (r: Record): number => Math.min(r.failures, LEVELS);
    const counts = new Array<number>(LEVELS + 1).fill(0);
    for (const r of this.byKey.values()) counts[level(r)] = (counts[level(r)] ?? 0) + 1;
    // every key below level `cut` goes, and the least recently updated `partial` of those at `cut`
    let cut = 1;
    let below = 0;
    while (cut < LEVELS && below + (counts[cut] ?? 0) < excess) below += counts[cut++] ?? 0;
    let partial = excess - below;
    for (const [k, r] of this.byKey) {
      const l = level(r);
      if (l < cut) this.byKey.delete(k);
      else if (l === cut && partial > 0) {
        this.byKey.delete(k);
        partial--;
      }
    }
  }
}

/**
 * The name to count `login` under: what `canonical` (the caller's directory, resolving alias domains) says, or `login`
 * itself when there is none or it fails (the directory's trouble must not stop the attempt; the check after it
 * answers that). Every caller asks this once per attempt and passes the result to attempt/failed/succeeded/ended.
 */
export async function countedAs(
  canonical: ((login: string) => Promise<string>) | undefined,
  login: string,
): Promise<string> {
  if (canonical === undefined) return login;
  try {
    return await canonical(login);
  } catch {
    return login;
  }
}
