// Failed-login slowdown: a delay that doubles with each failure, kept per client address and per login.
// Shared by pop3d (USER/PASS, AUTH PLAIN), smtpd (AUTH PLAIN/LOGIN) and ODMR (AUTH): one policy for every password login.

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
  readonly clock?: () => number;
}

interface Record {
  failures: number;
  last: number;
}

const MAX_KEYS = 100_000;

export class LoginThrottle {
  private readonly byKey = new Map<string, Record>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly forgetMs: number;
  private readonly clock: () => number;

  constructor(opts: ThrottleOptions = {}) {
    this.baseMs = opts.baseMs ?? 1000;
    this.maxMs = opts.maxMs ?? 30_000;
    this.forgetMs = opts.forgetMs ?? 15 * 60_000;
    this.clock = opts.clock ?? Date.now;
  }

  /** The wait before answering a login attempt from `ip` for `login` (the larger of the two). */
  delayFor(ip: string, login: string): number {
    return Math.max(this.delayOf(`ip:${ip}`), this.delayOf(`login:${login}`));
  }

  failed(ip: string, login: string): void {
    this.bump(`ip:${ip}`);
    this.bump(`login:${login}`);
  }

  /** A success forgets the login's failures, not the address's (one good account must not unlock guessing). */
  succeeded(login: string): void {
    this.byKey.delete(`login:${login}`);
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
    if (this.byKey.size >= MAX_KEYS) this.prune(now);
    const r = this.byKey.get(key);
    if (r && now - r.last <= this.forgetMs) {
      r.failures++;
      r.last = now;
    } else this.byKey.set(key, { failures: 1, last: now });
  }

  private prune(now: number): void {
    for (const [k, r] of this.byKey) if (now - r.last > this.forgetMs) this.byKey.delete(k);
    if (this.byKey.size >= MAX_KEYS) this.byKey.clear(); // a flood of addresses: start over rather than grow
  }
}

/** One process's news for the others that keep the same table (a failure or a success). */
export type ThrottleNews =
  | { readonly op: 'failed'; readonly ip: string; readonly login: string }
  | { readonly op: 'succeeded'; readonly login: string };

/**
 * A LoginThrottle kept in step across processes (several SMTP processes: src/start/privchild.ts): what happens
 * here is also told to `tell`, and what the others tell arrives through `heard`. A guesser gets no more tries by
 * landing on another process.
 */
export class SharedLoginThrottle extends LoginThrottle {
  constructor(
    private readonly tell: (news: ThrottleNews) => void,
    opts: ThrottleOptions = {},
  ) {
    super(opts);
  }

  override failed(ip: string, login: string): void {
    super.failed(ip, login);
    this.tell({ op: 'failed', ip, login });
  }

  override succeeded(login: string): void {
    super.succeeded(login);
    this.tell({ op: 'succeeded', login });
  }

  /** What another process told; anything malformed is ignored. */
  heard(news: unknown): void {
    if (typeof news !== 'object' || news === null) return;
    const n = news as { readonly op?: unknown; readonly ip?: unknown; readonly login?: unknown };
    if (typeof n.login !== 'string') return;
    if (n.op === 'failed' && typeof n.ip === 'string') super.failed(n.ip, n.login);
    else if (n.op === 'succeeded') super.succeeded(n.login);
  }
}
