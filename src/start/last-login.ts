// POP3 logins' last-login times, written to the directory in batches: at most one transaction a second.
import { errText } from '../core/index.js';
import { KeptDirectory, openDirectory, type Directory, type LoginTime } from '../directory/index.js';
import type { EventLog } from './log.js';

/** How long a login's time waits before it is written (ms): the batch's window. */
const LAST_LOGIN_DELAY_MS = 1000;
/** Distinct logins waiting that make a batch be written before its window ends. */
const MAX_PENDING = 10_000;

export interface LastLoginOptions {
  readonly delayMs?: number;
  /** The directory (default: the root's, opened read-write when first needed and kept open). */
  readonly open?: () => Promise<Directory>;
}

/**
 * Collects the logins of POP3 sessions and writes their times with one `recordLogins` per window. Until session 28
 * every login was its own `updateMailbox` transaction. On SQLite that is a synchronous commit with its fsyncs on
 * the event loop of `quail start`'s root process, which also relays the SMTP processes' wake-ups to delivery and the
 * children's logs: at 150–250 logins a second root was mostly waiting for the disk (docs/PERFORMANCE.md, twenty-fifth
 * pass). A time is informational (vpopmail's last auth), so a crash may lose the last window's; a clean stop writes
 * them (`close`). Only the latest time of each login in a window is written.
 */
export class LastLogins {
  private pending = new Map<string, Date>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private readonly dir: KeptDirectory;
  private closed = false;
  private readonly delayMs: number;

  constructor(
    root: string,
    private readonly log: EventLog,
    o: LastLoginOptions = {},
  ) {
    this.delayMs = o.delayMs ?? LAST_LOGIN_DELAY_MS;
    this.dir = new KeptDirectory(o.open ?? (() => openDirectory({ root })));
  }

  /** A login (`local@domain`) at a time; written within the window, or at `close`. */
  note(login: string, at: Date): void {
    if (Number.isNaN(at.getTime()) || !login.includes('@')) return; // nothing a batch could write (a child's bad message)
    const was = this.pending.get(login);
    if (was === undefined || was < at) this.pending.set(login, at);
    if (this.pending.size >= MAX_PENDING) this.write();
    else this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.writing !== undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.write();
    }, this.delayMs);
    this.timer.unref(); // never keeps a process alive; close() writes what waits
  }

  private write(): void {
    if (this.writing !== undefined || this.pending.size === 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writeBatch().finally(() => {
      this.writing = undefined;
      if (this.pending.size > 0) this.schedule(); // what came during the write waits for a window of its own
    });
  }

  /** Writes what waits now as one batch; a failure is logged, never thrown (the logins themselves succeeded). */
  private async writeBatch(): Promise<void> {
    const batch: LoginTime[] = [];
    for (const [login, at] of this.pending) {
      const i = login.lastIndexOf('@');
      batch.push({ domain: login.slice(i + 1), local: login.slice(0, i), at });
    }
    this.pending = new Map();
    try {
      await (await this.dir.get()).recordLogins(batch);
    } catch (err) {
      this.warn(batch.length, err);
      await this.dir.drop(); // the next batch opens a fresh connection
    }
  }

  private warn(n: number, err: unknown): void {
    this.log.event('pop3.warning', { logins: n, error: `last-login times not recorded: ${errText(err)}` });
  }

  /** Writes every time still waiting, then closes the directory. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    if (this.pending.size > 0) await this.writeBatch();
    await this.dir.close();
  }
}
