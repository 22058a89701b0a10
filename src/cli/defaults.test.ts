// Issue 18's defaults against a real `quail start`: postmaster@ of a new domain, --subdomains, the 35 MiB databytes
// advertised in SIZE and enforced, and a mail root the service account cannot reach.
// tier: system (needs quail start, swaks)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  listenerPort,
  MAIN,
  quail,
  startProcess,
  swaks,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

void test('a new domain takes postmaster@ and, with --subdomains, mail for every host below it; 65 MB is refused', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-defaults-'));
  chmodSync(root, 0o755);
  let q: QuailProcess | undefined;
  try {
    quail(['init', '--root', root, '--me', 'mx.defaults.test']);
    writeFileSync(join(root, 'control', 'listeners'), '127.0.0.1:0 smtp\n');
    quail(['domain', 'add', 'example.com', '--subdomains', '--root', root]);
    quail(['user', 'add', 'joe@example.com', '--password', 'secret', '--root', root]);
    q = await startProcess(root);
    const port = listenerPort(root, 'smtp');
    const pm = swaks(port, ['--to', 'postmaster@example.com']);
    assert.equal(pm.status, 0, `RFC 5321 4.5.1: postmaster must work at once\n${pm.out}`);
    assert.match(pm.out, /250-SIZE 36700160\r?\n/, 'SIZE advertises control/databytes as init wrote it');
    const sub = swaks(port, ['--to', 'joe@lists.example.com']);
    assert.equal(sub.status, 0, sub.out);
    const unknown = swaks(port, ['--to', 'nobody@lists.example.com']);
    assert.match(unknown.out, /550 5\.1\.1/, 'a host below is the domain: its unknown addresses are refused too');
    const joe = join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new');
    await waitFor(
      () => readdirSync(joe).length === 1,
      20_000,
      () => q?.log() ?? '',
    );
    // the alias took postmaster's mail to the server's postmaster (alias/.qmail-postmaster: alias/Maildir)
    await waitFor(
      () => readdirSync(join(root, 'alias', 'Maildir', 'new')).length === 1,
      20_000,
      () => q?.log() ?? '',
    );
    const big = join(root, 'big.txt');
    writeFileSync(big, `${'x'.repeat(998)}\r\n`.repeat(65_000)); // 65 MB
    const refused = swaks(port, ['--to', 'joe@example.com', '--suppress-data', '--body', `@${big}`]);
    assert.match(refused.out, /552 5\.3\.4/, refused.out.slice(-2000));
    assert.equal(readdirSync(joe).length, 1);
  } finally {
    q?.child.kill('SIGTERM');
    await q?.exited;
    q?.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});

void test(
  'a mail root control/quailuser cannot reach stops quail start with what to do',
  { skip: process.getuid?.() !== 0 && 'only root starts the children as another account' },
  () => {
    const parent = mkdtempSync(join(tmpdir(), 'quail-defaults-'));
    try {
      const root = join(parent, 'root');
      quail(['init', '--root', root, '--me', 'mx.defaults.test']);
      chmodSync(parent, 0o700); // a clone under /root
      const r = spawnSync(process.execPath, [MAIN, 'start', '--root', root, '--smtp', '127.0.0.1:0'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 100, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`cannot reach the mail root ${root}: ${parent} is mode 0700`));
      assert.match(r.stderr, /chmod o\+x/);
      assert.doesNotMatch(r.stdout, /smtpd\.started/, 'nothing was started');
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  },
);
