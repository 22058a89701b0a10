// quail dovecot-conf: the configuration docs/IMAP.md describes, for this mail root's account; the checkpassword script.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkpasswordScript, dovecotConfig } from '../dovecot/index.js';
import { systemPasswd } from '../users/index.js';
import { MAIN } from '../../test/support/start.js';

const quail = (args: readonly string[]): { status: number | null; out: string; err: string } => {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr };
};

void test('quail dovecot-conf prints dovecotConfig() for control/quailuser; --script the checkpassword program; bad flags exit 100', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-dovecot-conf-'));
  const root = join(dir, 'root');
  try {
    assert.equal(quail(['init', '--root', root, '--me', 'imap.test']).status, 0);
    const account = readFileSync(join(root, 'control', 'quailuser'), 'utf8').trim();
    const pw = systemPasswd({}).byName(account);
    assert.ok(pw, `${account} is an account`);
    const r = quail(['dovecot-conf', '--root', root, '--imap-port', '1143', '--base-dir', '/run/dq']);
    assert.equal(r.status, 0, r.err);
    assert.equal(
      r.out,
      dovecotConfig({
        root,
        uid: pw.uid,
        gid: pw.gid,
        baseDir: '/run/dq',
        address: '127.0.0.1',
        imapPort: 1143,
        pop3Port: 0,
        checkpassword: '/usr/local/bin/quail-checkpassword',
        quota: true,
      }),
    );
    assert.match(r.out, /protocols = imap\n/);
    const s = quail(['dovecot-conf', '--root', root, '--script']);
    assert.equal(s.status, 0, s.err);
    assert.equal(s.out, checkpasswordScript({ node: process.execPath, main: MAIN, root }));
    for (const bad of [
      ['--imap-port', 'x'],
      ['--imap-port', '0'],
      ['--tls-cert', '/x.pem'],
    ]) {
      const b = quail(['dovecot-conf', '--root', root, ...bad]);
      assert.equal(b.status, 100, `${bad.join(' ')}: ${b.out}`);
      assert.match(b.err, /quail dovecot-conf: fatal: /);
    }
    const none = quail(['dovecot-conf', '--root', join(dir, 'nothing')]);
    assert.equal(none.status, 100);
    assert.match(none.err, /quail init/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
