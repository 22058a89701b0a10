// maildirmake: DIR, DIR/tmp, DIR/new, DIR/cur with mode 0700; refuses an existing DIR.
import { mkdirSync, chmodSync, chownSync } from 'node:fs';

/** Creates a Maildir; throws (EEXIST etc.) if DIR exists or cannot be made. Optionally chowns all four. */
export function maildirMake(dir: string, owner?: { uid: number; gid: number }): void {
  mkdirSync(dir, { mode: 0o700 });
  const all = [dir, `${dir}/tmp`, `${dir}/new`, `${dir}/cur`];
  for (const sub of all.slice(1)) mkdirSync(sub, { mode: 0o700 });
  for (const p of all) {
    chmodSync(p, 0o700);
    if (owner) chownSync(p, owner.uid, owner.gid);
  }
}
