// The send process's side: the scheduler's OfficeRouter over run/offices.json (written by the supervisor's keeper).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { asciiLower } from '../core/index.js';
import { cameFromOf, parseTable, placeOf, type OfficePlace, type OfficeTable } from './table.js';

export const tableFile = (root: string): string => join(root, 'run', 'offices.json');

/**
 * Synchronous answers from the last table the keeper wrote (re-read when the file changes; its stat is looked at on
 * every call, a few microseconds, so that a retry the keeper asks for right after writing a move sees the move). Before any table exists, an address of a domain in `virtualdomains` (where the directory's domains
 * are) is `unknown`: it waits rather than being delivered at the wrong office.
 */
export class OfficeFileRouter {
  private table: OfficeTable | null = null;
  private stamp = '';

  constructor(
    private readonly root: string,
    private readonly self: string,
    /** The domains of control/virtualdomains (lowercase), for the time before the first table. */
    private readonly virtualDomains: ReadonlySet<string>,
  ) {}

  private current(): OfficeTable | null {
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
