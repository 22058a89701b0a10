// The contract suite on a real PostgreSQL server: a throw-away cluster started for this test file.
// tier: system (needs PostgreSQL)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errText } from '../core/index.js';
import { directoryContract } from './contract.js';
import { officesContract } from './offices-contract.js';
import { LATEST, MIGRATIONS } from './migrations.js';
import { openDirectory } from './open.js';
import { startCluster, type Cluster } from '../../test/support/pgcluster.js';
import { waitFor } from '../../test/support/wait.js';

let cluster: Cluster | null = null;
let reason = '';
const base = mkdtempSync(join(tmpdir(), 'quail-dir-pg-'));

before(async () => {
  try {
    cluster = await startCluster();
  } catch (err) {
    reason = errText(err);
    process.stderr.write(`directory postgres tests: cannot start PostgreSQL: ${reason}\n`);
  }
});
after(() => {
  cluster?.stop();
  rmSync(base, { recursive: true, force: true });
});

/** Without a cluster every test fails with the reason: CI must never pass by skipping PostgreSQL. */
function need(): Cluster {
  if (!cluster) assert.fail(`PostgreSQL is required for the directory contract suite: ${reason}`);
  return cluster;
}

directoryContract('postgres', async () =>
  openDirectory({ root: mkdtempSync(join(base, 'r-')), url: await need().newDatabase() }),
);
officesContract('postgres', async () =>
  openDirectory({ root: mkdtempSync(join(base, 'o-')), url: await need().newDatabase() }),
);

void test('postgres: a change to offices or mailboxes is announced (LISTEN/NOTIFY), a login time is not', async () => {
  const url = await need().newDatabase();
  const a = await openDirectory({ root: mkdtempSync(join(base, 'n-')), url });
  const b = await openDirectory({ root: mkdtempSync(join(base, 'n-')), url });
  const heard: string[] = [];
  const w = await b.watchChanges(
    (table) => heard.push(table),
    () => undefined,
  );
  try {
    assert.ok(w, 'PostgreSQL has notifications');
    await a.addOffice({ name: 'ny', host: '127.0.0.2' });
    await a.addDomain({ name: 'megacorp.example', account: { user: 'q', uid: 1, gid: 1 } });
    await a.addMailbox({ domain: 'megacorp.example', local: 'nick', passwordHash: '' });
    await a.updateMailbox('megacorp.example', 'nick', { lastLogin: new Date(5000) });
    await a.setMailboxOffice('megacorp.example', 'nick', 'ny');
    await a.addOffice({ name: 'atl', host: '127.0.0.3' });
    // Notifications arrive in commit order: once the last office is heard, everything before it was.
    await waitFor(() => heard.filter((t) => t === 'offices').length >= 2, 30_000, 'the second office to be heard');
    assert.deepEqual(heard, ['offices', 'domains', 'mailboxes', 'mailboxes', 'offices'], 'the login time woke nobody');
  } finally {
    await w?.close();
    await a.close();
    await b.close();
  }
});
