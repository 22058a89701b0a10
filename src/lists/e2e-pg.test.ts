// Mailing lists over a PostgreSQL directory: the programs read it with control/directory's URL as the domain's
// tier: system (needs swaks, root, PostgreSQL)
// account, and the supervisor writes the confirmations through run/lists.sock.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errText } from '../core/index.js';
import { startCluster, type Cluster } from '../../test/support/pgcluster.js';
import { listenerPort, quail, startProcess, swaks, waitFor, type QuailProcess } from '../../test/support/start.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (quail start drops to control/quailuser; lists run as the domain account)';

let cluster: Cluster | null = null;
let reason = '';
let root = '';
let q: QuailProcess | undefined;

before(async () => {
  if (!isRoot) return;
  try {
    cluster = await startCluster();
  } catch (err) {
    reason = errText(err);
    return;
  }
  root = mkdtempSync(join(tmpdir(), 'quail-lists-pg-'));
  chmodSync(root, 0o755);
  quail(['init', '--root', root, '--me', 'mail.example.com']);
  quail(['directory', 'use', await cluster.newDatabase(), '--root', root]);
  quail(['domain', 'add', 'example.com', '--root', root]);
  for (const u of ['ann', 'bob']) quail(['user', 'add', `${u}@example.com`, '--password', 'pw', '--root', root]);
  quail(['list', 'create', 'team@example.com', '--root', root]);
  quail(['list', 'subscribe', 'team@example.com', 'bob@example.com', '--root', root]);
  q = await startProcess(root);
});

after(async () => {
  q?.child.kill('SIGTERM');
  if (q) await q.exited;
  cluster?.stop();
  if (root !== '') rmSync(root, { recursive: true, force: true });
});

function inbox(user: string): string[] {
  const dir = join(root, 'domains', 'example.com', user, 'Maildir', 'new');
  return readdirSync(dir).map((f) => readFileSync(join(dir, f), 'latin1'));
}

async function arrives(user: string, re: RegExp): Promise<string> {
  let found: string | undefined;
  await waitFor(
    () => (found = inbox(user).find((m) => re.test(m))) !== undefined,
    60_000,
    () => `a message ${re} for ${user}\n${q?.log().slice(-3000) ?? ''}`,
  );
  return found as string;
}

void test('postgres directory: subscribe by mail and confirm, then a post with VERP', { skip }, async () => {
  if (!cluster) assert.fail(`PostgreSQL is required: ${reason}`);
  const port = listenerPort(root, 'smtp');
  const send = (from: string, to: string, subject: string): void => {
    const r = swaks(port, ['--to', to, '--header', `Subject: ${subject}`, '--body', 'hi\n'], from);
    assert.equal(r.status, 0, r.out);
  };
  send('ann@example.com', 'team-subscribe@example.com', 'sub');
  const ask = await arrives('ann', /Subject: confirm subscribe to team@example\.com/);
  const confirm = /^Reply-To: <([^>]+)>/m.exec(ask)?.[1] ?? '';
  send('ann@example.com', confirm, 'yes');
  await arrives('ann', /Subject: WELCOME to team@example\.com/);
  assert.match(
    quail(['list', 'members', 'team@example.com', '--root', root]),
    /^ann@example\.com\nbob@example\.com\n$/,
  );
  send('bob@example.com', 'team@example.com', 'over postgres');
  const m = await arrives('ann', /Subject: over postgres/);
  assert.match(m, /^Return-Path: <team-return-1-ann=example\.com@example\.com>$/m);
  await arrives('bob', /Subject: over postgres/);
});
