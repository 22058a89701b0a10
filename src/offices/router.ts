// The send process's side: the scheduler's OfficeRouter over run/offices.json (written by the supervisor's keeper).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { asciiLower } from '../core/index.js';
import { cameFromOf, parseTable, placeOf, type OfficePlace, type OfficeTable } from './table.js';

export const tableFile = (root: string): string => join(root, 'run', 'offices.json');

/**
 * Synchronous answers from the last table the keeper wrote (re-read when the file changes, looked at no more than
 * once a second). Before any table exists, an address of a domain in `virtualdomains` (where the directory's domains
 * are) is `unknown`: it waits rather than being delivered at the wrong office.
 */
export class OfficeFileRouter {
  private table: OfficeTable | null = null;
  private stamp = '';
  private checked = 0;

  constructor(
    private readonly root: string,
    private readonly self: string,
    /** The domains of control/virtualdomains (lowercase), for the time before the first table. */
    private readonly virtualDomains: ReadonlySet<string>,
    private readonly clock: () => number = Date.now,
  ) {}

  private current(): OfficeTable | null {
    const now = this.clock();
    if (now - this.checked < 1000 && this.table !== null) return this.table;
    this.checked = now;
    try {
      const st = statSync(tableFile(this.root));
      const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (stamp !== this.stamp) {
        const t = parseTable(readFileSync(tableFile(this.root), 'utf8'));
        if (t !== null) {
          this.table = t;
          this.stamp = stamp;
        }
      }
    } catch {
      // no table yet, or unreadable: keep what we had
    }
    return this.table;
  }

  place(address: string): OfficePlace {
    const t = this.current();
    if (t !== null) return placeOf(t, this.self, address);
    const at = address.lastIndexOf('@');
    if (at > 0 && this.virtualDomains.has(asciiLower(address.slice(at + 1))))
      return { kind: 'unknown', why: 'this server has not read the mailbox→office table from the directory yet' };
    return { kind: 'here' };
  }

  cameFrom(meta: Readonly<Record<string, string>>): string | null {
    const t = this.current();
    return t === null ? null : cameFromOf(t, this.self, meta);
  }
}
