// quail held add|show|list|remove: held domains recorded in the directory (SQLite and PostgreSQL), their files as the
// seeds make them by hand, and quail start pushing them by their own interval with no cron and no seed files.
// tier: system (needs quail start, swaks, python3, PostgreSQL)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testSmtp } from '../../test/support/testsmtp.js';
import { startCluster } from '../../test/support/pgcluster.js';
import { freePort, listenerPort, quail, setupRoot, startProcess, swaks, waitFor } from '../../test/support/start.js';

const DOMAIN = 'some.example.com';

function heldRoot(): { root: string; owner: ReturnType<typeof setupRoot> } {
  const root = mkdtempSync(join(tmpdir(), 'quail-helddir-'));
  return { root, owner: setupRoot(root, 'isp.test', []) };
}

/** What held add must have written: the seed's files, the settings, the lines of rcpthosts/virtualdomains/assign. */
function assertFiles(root: string, host: string, owner: { uid: number }): void {
  const home = join(root, 'held', DOMAIN);
  assert.equal(readFileSync(join(home, 'RELAYHOST'), 'utf8'), `${host}\n`);
  assert.equal(readFileSync(join(home, '.qmail-default'), 'utf8'), './Maildir/\n');
  for (const s of ['cur', 'new', 'tmp']) assert.equal(statSync(join(home, 'Maildir', s)).uid, owner.uid);
  assert.match(
    readFileSync(join(home, 'HELD'), 'utf8'),
    /^every 3\netrn yes\natrn cust@isp\.test\nautoturn 127\.0\.0\.9\/32\n$/,
  );
  assert.match(readFileSync(join(root, 'control', 'rcpthosts'), 'utf8'), /^some\.example\.com$/m);
  assert.match(
    readFileSync(join(root, 'control', 'virtualdomains'), 'utf8'),
    /^some\.example\.com:some\.example\.com$/m,
  );
  assert.match(
    readFileSync(join(root, 'users', 'assign'), 'utf8'),
    new RegExp(`^\\+some\\.example\\.com-:[^:]+:${owner.uid}:\\d+:${home}:-::$`, 'm'),
  );
}

/** `ETRN node` from 127.0.0.1 with python3's smtplib after EHLO: the reply line. */
function etrn(port: number, node: string): string {
  const py = `import smtplib
s=smtplib.SMTP('127.0.0.1',${port})
s.ehlo('customer.test')
c,m=s.docmd('ETRN','${node}')
print(c,m.decode())
s.quit()`;
  return spawnSync('python3', ['-c', py], { encoding: 'utf8' }).stdout;
}

const ADD = ['--every', '3s', '--etrn', '--atrn', 'cust@isp.test', '--autoturn', '127.0.0.9'];

void test('held add, then quail start pushes by the domain’s own interval; status and show name the last push; remove', async () => {
  const { root, owner } = heldRoot();
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  assert.match(quail(['held', 'add', DOMAIN, '--root', root, '--host', host, ...ADD]), /holding some\.example\.com/);
  assertFiles(root, host, owner);
  assert.match(quail(['held', 'show', DOMAIN, '--root', root]), /every: +3 s[\s\S]*waiting: +0[\s\S]*last push: never/);
  // Bad input: a clear message and exit 100, nothing written.
  assert.throws(() => quail(['held', 'add', DOMAIN, '--root', root, '--host', host]), /already held.*--replace/);
  assert.throws(() => quail(['held', 'add', 'b.test', '--root', root]), /--host HOST\[:PORT\]/);
  assert.throws(() => quail(['held', 'add', 'b.test', '--root', root, '--host', 'x', '--every', 'soon']), /--every/);
  assert.throws(
    () => quail(['held', 'add', 'b.test', '--root', root, '--host', 'x', '--autoturn', '1.2.3']),
    /IP\/BITS/,
  );
  assert.equal(existsSync(join(root, 'held', 'b.test')), false);

  const customer = await testSmtp('127.0.0.1', { port });
  writeFileSync(join(root, 'control', 'heldinterval'), '3600\n'); // only the domain's own 3 s can explain a push
  const q = await startProcess(root);
  try {
    const smtp = listenerPort(root, 'smtp');
    assert.equal(swaks(smtp, ['--to', `joe@${DOMAIN}`]).status, 0);
    await waitFor(() => customer.messages.length === 1, 30_000, q.log);
    await waitFor(() => readdirSync(join(root, 'held', DOMAIN, 'Maildir', 'new')).length === 0, 20_000, q.log);
    assert.deepEqual(customer.messages[0]?.recipients, [`joe@${DOMAIN}`]);
    await waitFor(() => /1 sent/.test(quail(['status', '--root', root])), 20_000, q.log);
    assert.match(
      quail(['status', '--root', root]),
      /held: some\.example\.com to 127\.0\.0\.1:\d+: 0 waiting; last push \d{4}-/,
    );
    assert.match(quail(['held', 'show', DOMAIN, '--root', root]), /last push: \d{4}-\S+: 1 sent, 0 bounced, 0 kept/);
    assert.match(
      quail(['held', 'list', '--root', root]),
      /^some\.example\.com host 127\.0\.0\.1:\d+ waiting 0 lock free last \d{4}-/m,
    );
    // ETRN follows the record: allowed with --etrn (nothing waits: 251), refused once it is taken away.
    assert.match(etrn(smtp, DOMAIN), /^251 /);
    quail(['held', 'add', DOMAIN, '--root', root, '--host', host, '--every', '3s', '--replace']);
    assert.match(etrn(smtp, DOMAIN), /^459 .*not enabled/);
  } finally {
    q.killGroup();
    await q.exited;
    await customer.close();
  }
  assert.equal(customer.messages.length, 1);
  assert.match(quail(['held', 'remove', DOMAIN, '--root', root]), /no longer held/);
  assert.doesNotMatch(readFileSync(join(root, 'control', 'rcpthosts'), 'utf8'), /some\.example\.com/);
  assert.doesNotMatch(readFileSync(join(root, 'users', 'assign'), 'utf8'), /some\.example\.com/);
  assert.equal(existsSync(join(root, 'held', DOMAIN, 'Maildir')), true, 'the home stays without --remove-files');
  assert.throws(() => quail(['held', 'show', DOMAIN, '--root', root]), /not held here/);
});

void test('held domains in a PostgreSQL directory: add, list, show, remove', async (t) => {
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  try {
    cluster = await startCluster();
  } catch (err) {
    assert.fail(`PostgreSQL is required: ${String(err)}`);
  }
  t.after(() => cluster.stop());
  const url = await cluster.newDatabase();
  const { root, owner } = heldRoot();
  const d = ['--root', root, '--directory', url];
  quail(['held', 'add', DOMAIN, ...d, '--host', 'mail.customer.test:2525', ...ADD]);
  assertFiles(root, 'mail.customer.test:2525', owner);
  const shown = JSON.parse(quail(['held', 'show', DOMAIN, ...d, '--json'])) as { record: { atrnLogin: string } };
  assert.equal(shown.record.atrnLogin, 'cust@isp.test');
  // Drift: a lost RELAYHOST is found and made again from the directory.
  rmSync(join(root, 'held', DOMAIN, 'RELAYHOST'));
  assert.throws(() => quail(['directory', 'check', ...d]), /held\/some\.example\.com\/RELAYHOST.*missing/);
  quail(['directory', 'check', '--repair', ...d]);
  assert.equal(readFileSync(join(root, 'held', DOMAIN, 'RELAYHOST'), 'utf8'), 'mail.customer.test:2525\n');
  quail(['held', 'add', DOMAIN, ...d, '--host', 'other.customer.test', '--every', '1h', '--replace']);
  assert.match(quail(['held', 'show', DOMAIN, ...d]), /host: +other\.customer\.test\nevery: +3600 s\netrn: +no/);
  assert.equal(readFileSync(join(root, 'held', DOMAIN, 'RELAYHOST'), 'utf8'), 'other.customer.test\n');
  assert.throws(() => quail(['domain', 'add', DOMAIN, ...d]), /held domain/);
  quail(['held', 'remove', DOMAIN, ...d, '--remove-files']);
  assert.equal(existsSync(join(root, 'held', DOMAIN)), false);
  assert.throws(() => quail(['held', 'remove', DOMAIN, ...d]), /not a held domain/);
});
