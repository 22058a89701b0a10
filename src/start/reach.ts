// Can an account reach the mail root? Each directory from / down to it must let that uid search it (x).
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface Reachability {
  readonly ok: boolean;
  /** The first directory on the way the account may not enter, and its mode and owner. */
  readonly blocked?: { readonly dir: string; readonly mode: number; readonly uid: number; readonly gid: number };
}

/**
 * Whether uid/gid (no supplementary groups: quail's children drop them, privchild.ts) may search every directory
 * from / down to `dir`, and `dir` itself. Decided from the permission bits as the kernel does (owner, else group,
 * else other); uid 0 always may. ACLs are not read: a tree that needs them is rare, and the start then fails later
 * with the system's own error.
 */
export function reachable(dir: string, uid: number, gid: number): Reachability {
  if (uid === 0) return { ok: true };
  const chain: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of chain) {
    let st;
    try {
      st = statSync(d);
    } catch {
      return { ok: true }; // not there yet (quail init makes it): nothing to say
    }
    const bits = st.uid === uid ? (st.mode >> 6) & 7 : st.gid === gid ? (st.mode >> 3) & 7 : st.mode & 7;
    if ((bits & 1) === 0) return { ok: false, blocked: { dir: d, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } };
  }
  return { ok: true };
}

/** What to say about it: the directory in the way and the two fixes. */
export function unreachableText(root: string, account: string, r: Reachability): string {
  const b = r.blocked;
  if (!b) return '';
  return `the account ${account} (control/quailuser), which serves SMTP and POP3 and owns the queue, cannot reach the mail root ${root}: ${b.dir} is mode ${b.mode.toString(8).padStart(4, '0')} (owner uid ${b.uid}); allow it in (chmod o+x ${b.dir}, or chmod 755 on each directory down to the root) or put the mail root elsewhere (--root /var/quail)`;
}
