// Test helpers (not a test): what /proc says of processes.
import { readdirSync, readFileSync } from 'node:fs';

/** The live (not zombie) processes of process group `pgid`, from /proc. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      // "pid (comm) state ppid pgrp ...": comm may hold anything, so read after its last ')'
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z' && Number(pgrp) === pgid) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
