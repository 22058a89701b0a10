// The account a test's mail root delivers as: as root, the `quail` account (created as `quail init` creates it, so a
// test that runs before any init on a fresh machine finds it too); otherwise the invoking user.
import { spawnSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { systemPasswd } from '../../src/users/index.js';

export interface TestAccount {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
}

export function deliveryAccount(): TestAccount {
  if (process.getuid?.() !== 0) {
    const me = userInfo();
    return { user: me.username, uid: me.uid, gid: me.gid };
  }
  let quail = systemPasswd().byName('quail');
  if (!quail) {
    const r = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'quail'], {
      encoding: 'utf8',
    });
    quail = systemPasswd().byName('quail');
    if (!quail) throw new Error(`no account quail, and useradd failed: ${r.stderr || `exit ${r.status}`}`);
  }
  return { user: 'quail', uid: quail.uid, gid: quail.gid };
}
