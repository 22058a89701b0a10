// qmail-tcpto: a memory of remote addresses whose connections timed out, so they are skipped for a while.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** One remembered address: consecutive connect timeouts and when the last one happened (unix seconds). */
export interface TcptoEntry {
  readonly errors: number;
  readonly last: number;
}

/**
 * Where the memory lives: `<root>/run/tcpto` (JSON; losing it only costs a few slow connection attempts). As root,
 * quail start gives the file to the unprivileged send process, which cannot create files in `run/`: it is then
 * rewritten in place, and `tcpok` empties it rather than removing it.
 */
export const tcptoPath = (root: string): string => join(root, 'run', 'tcpto');

/**
 * The skip rule (as qmail-tcpto): after two consecutive timeouts an address is skipped until a back-off has
 * passed since the last one: 2 minutes, doubling with every further timeout, at most an hour. A successful
 * connection or a refusal (the host answered) clears it; `quail remote tcpok` clears everything.
 */
export function backoffSeconds(errors: number): number {
  return errors < 2 ? 0 : Math.min(3600, 120 * 2 ** (errors - 2));
}

export class Tcpto {
  /** The last file read: its identity (inode, size, times) and what it held. */
  private seen: { readonly id: string; readonly all: ReadonlyMap<string, TcptoEntry> } | undefined;
  private fileReads = 0;

  constructor(
    private readonly path: string,
    private readonly clock: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  /** The whole memory (an unreadable or damaged file counts as empty: it is only a hint). */
  read(): ReadonlyMap<string, TcptoEntry> {
    try {
      // Looked at per connection attempt (`quail remote tcpok` may clear it meanwhile). Usually there is no file, and
      // a stat that says so costs far less than a read that throws ENOENT; as root's send process has one (run/ is
      // root's: root makes it empty and gives it away), it is read and parsed again only when the stat says it
      // changed (docs/PERFORMANCE.md, tenth pass).
      const st = statSync(this.path, { throwIfNoEntry: false });
      if (st === undefined) return new Map();
      const id = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      if (this.seen?.id === id) return this.seen.all;
      const text = readFileSync(this.path, 'utf8');
      this.fileReads++;
      const out = new Map<string, TcptoEntry>();
      this.seen = { id, all: out };
      const data = JSON.parse(text) as unknown;
      if (data !== null && typeof data === 'object') {
        for (const [ip, v] of Object.entries(data as Record<string, unknown>)) {
          const e = v as Partial<TcptoEntry>;
          if (typeof e.errors === 'number' && typeof e.last === 'number')
            out.set(ip, { errors: e.errors, last: e.last });
        }
      }
      return out;
    } catch {
      return this.seen?.all ?? new Map(); // empty or damaged (kept empty until it changes), or unreadable
    }
  }

  /** How many times the file was read (for tests: an unchanged file is not read again). */
  get reads(): number {
    return this.fileReads;
  }

  /** True when `ip` timed out recently enough to be skipped now. */
  skip(ip: string): boolean {
    const e = this.read().get(ip);
    return e !== undefined && this.clock() < e.last + backoffSeconds(e.errors);
  }

  /** Records the end of a connection attempt: timed out (count it) or not (forget the address). */
  record(ip: string, timedOut: boolean): void {
    const all = new Map(this.read());
    const had = all.get(ip);
    if (!timedOut && had === undefined) return;
    if (timedOut) all.set(ip, { errors: (had?.errors ?? 0) + 1, last: this.clock() });
    else all.delete(ip);
    this.write(all);
  }

  /** `quail remote tcpok`: forget every address; returns how many were remembered. The file (and its owner) stays. */
  clear(): number {
    const n = this.read().size;
    if (statSync(this.path, { throwIfNoEntry: false }) !== undefined) writeFileSync(this.path, '{}\n');
    return n;
  }

  private write(all: Map<string, TcptoEntry>): void {
    this.seen = undefined; // a rewrite in place may keep the size and, within the clock's grain, the times
    const text = `${JSON.stringify(Object.fromEntries(all))}\n`;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      writeFileSync(tmp, text);
      renameSync(tmp, this.path);
    } catch {
      try {
        // A directory we may not write in (run/ is root's) holding a file we may: rewrite it in place.
        writeFileSync(this.path, text);
      } catch {
        // A hint only: failing to remember never fails a delivery.
      }
    }
  }
}
