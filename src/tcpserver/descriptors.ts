// The process's limit on open files (RLIMIT_NOFILE), and the guard every listener puts on its accepts: close to the
// limit a new connection is closed at once and the operator told, once a minute, what to raise, instead of the process
// running out of descriptors in the middle of the sessions it serves (a queue file, a Maildir, a control file).
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

/** The soft limit on open files of this process (/proc/self/limits); undefined when unknown or unlimited. */
export function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)\s/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * Below this, `quail start` refuses to start: loading its code alone takes about 70 descriptors, each process holds
 * about 30 before its first connection, and a session may hold a few more (its socket, a queue file, a Maildir file).
 */
export const MIN_OPEN_FILES = 256;

/** What the operator should do about too few descriptors (start's refusal and the listeners' report). */
export const RAISE_OPEN_FILES =
  'raise it (LimitNOFILE=65536 in the systemd unit, as quail systemd-unit writes; ulimit -n 65536 in a shell)';

/** The descriptor number of an accepted socket (Linux: TCP handles have one); undefined if it has none. */
function descriptorOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export interface DescriptorGuardOptions {
  /** The limit (default: this process's, read once); undefined: no guard. */
  readonly limit?: number | undefined;
  /** At most one report in this long (default 60 s); what happened meanwhile is counted in the next. */
  readonly everyMs?: number;
  readonly now?: () => number;
}

/**
 * One per listening server. Linux hands out the lowest free descriptor, so an accepted socket numbered N means N
 * descriptors below it are in use: within `reserve` of the limit the connection is closed without a word (as libuv
 * closes the ones it cannot accept at all) and the sessions already served keep the descriptors they need. A failed
 * accept (EMFILE, ENFILE) is reported the same way; the listener keeps listening, and connections are served again as
 * soon as sessions end and free descriptors. Never throws; reports at most once every `everyMs`.
 */
export class DescriptorGuard {
  private readonly limit: number | undefined;
  private readonly reserve: number;
  private readonly everyMs: number;
  private readonly now: () => number;
  private lastReport = -Infinity;
  private missed = 0;

  constructor(
    private readonly report: (text: string) => void,
    o: DescriptorGuardOptions = {},
  ) {
    this.limit = 'limit' in o ? o.limit : openFilesLimit();
    // an eighth of the limit, 8 to 64: what the sessions in progress may still open
    this.reserve = Math.min(64, Math.max(8, Math.floor((this.limit ?? 0) / 8)));
    this.everyMs = o.everyMs ?? 60_000;
    this.now = o.now ?? Date.now;
  }

  /** An accepted socket: true to serve it; false when the process is out of descriptors (the socket is destroyed). */
  admit(socket: Socket): boolean {
    const fd = descriptorOf(socket);
    if (this.limit === undefined || fd === undefined || fd < this.limit - this.reserve) return true;
    socket.destroy();
    this.note(`out of file descriptors (${fd + 1} of the limit of ${this.limit} in use): new connections are closed`);
    return false;
  }

  /** A listening server's 'error': true when it is an accept that ran out of descriptors (reported here). */
  acceptError(err: Error): boolean {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EMFILE' && code !== 'ENFILE') return false;
    this.note(
      code === 'EMFILE'
        ? `out of file descriptors (the limit is ${this.limit ?? 'unknown'}): a connection could not be accepted`
        : 'the system is out of file descriptors (ENFILE, sysctl fs.file-max): a connection could not be accepted',
    );
    return true;
  }

  private note(what: string): void {
    this.missed++;
    const now = this.now();
    if (now - this.lastReport < this.everyMs) return;
    const more = this.missed > 1 ? ` (${this.missed} connections turned away since the last report)` : '';
    this.report(`${what}${more}; ${RAISE_OPEN_FILES}, or lower the listeners' maxconn`);
    this.lastReport = now;
    this.missed = 0;
  }
}
