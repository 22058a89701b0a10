// quail filter against the real Debian clamd and spamd: EICAR refused or quarantined, GTUBE refused or tagged.
// tier: system (needs quail start, swaks, clamav-daemon, spamd)
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  MAIN,
  freePort,
  listenerPort,
  queuedCount,
  setupRoot,
  startProcess,
  swaks,
  waitFor,
} from '../../test/support/start.js';

// The EICAR test string, in two halves so this file itself is not a "virus" to a scanner.
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR' + '-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE' + '-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

function canConnect(target: { path: string } | { port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const s = 'path' in target ? connect(target.path) : connect(target.port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

void test('quail filter with real clamd and spamd: EICAR 554 or quarantined, GTUBE 554 or tagged, clean mail marked and delivered', async () => {
  const work = mkdtempSync(join(tmpdir(), 'quail-scan-'));
  chmodSync(work, 0o755);
  const daemons: ChildProcess[] = [];
  let stop = (): void => undefined;
  try {
    // clamd: a test signature database of one .ndb line (no internet, no freshclam), a socket of its own
    const db = join(work, 'db');
    mkdirSync(db);
    writeFileSync(join(db, 'quail-test.ndb'), `Quail-Test-EICAR:0:*:${Buffer.from(EICAR, 'latin1').toString('hex')}\n`);
    const sock = join(work, 'clamd.sock');
    writeFileSync(
      join(work, 'clamd.conf'),
      `Foreground yes\nDatabaseDirectory ${db}\nLocalSocket ${sock}\nLocalSocketMode 666\nLogFile ${join(work, 'clamd.log')}\nUser root\n`,
    );
    daemons.push(spawn('clamd', ['-c', join(work, 'clamd.conf')], { stdio: 'ignore' }));
    // spamd on a free loopback port, without network tests (-L)
    const spamPort = await freePort();
    daemons.push(
      spawn(
        'spamd',
        ['--listen', `127.0.0.1:${spamPort}`, '-L', '-u', 'nobody', '--max-children', '2', '-s', 'stderr'],
        {
          stdio: 'ignore',
        },
      ),
    );
    await until(() => canConnect({ path: sock }), 120_000, 'clamd to listen');
    await until(() => canConnect({ port: spamPort }), 120_000, 'spamd to listen');

    const root = join(work, 'root');
    mkdirSync(root);
    setupRoot(root, 'mx.example.com', [{ domain: 'example.com', boxes: ['joe'] }]);
    const bin = join(root, 'bin');
    mkdirSync(bin, { recursive: true, mode: 0o755 }); // quail init may have made it (its own bin/ scripts)
    writeFileSync(join(bin, 'quail'), `#!/bin/sh\nexec ${process.execPath} ${MAIN} "$@"\n`, { mode: 0o755 });
    writeFileSync(join(bin, 'quail-filter'), '#!/bin/sh\nexec quail filter\n', { mode: 0o755 });
    const both = `QMAILQUEUE="${join(bin, 'quail-filter')}",QUAIL_CLAMD="${sock}",QUAIL_SPAMD="127.0.0.1:${spamPort}"`;
    writeFileSync(
      join(root, 'control', 'tcp.smtp'),
      [
        `127.0.0.1:allow,${both},QUAIL_SPAMACTION="reject"`,
        `127.0.0.2:allow,${both},QUAIL_SPAMACTION="tag"`,
        `127.0.0.3:allow,${both},QUAIL_VIRUSACTION="quarantine"`,
        '',
      ].join('\n'),
    );
    const q = await startProcess(root, 30_000, { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` });
    stop = () => q.killGroup();
    const port = listenerPort(root, 'smtp');
    const from = (ip: string): string[] => ['--to', 'joe@example.com', '--local-interface', ip];
    const newDir = join(root, 'domains', 'example.com', 'joe', 'Maildir', 'new');
    const delivered = (): string[] => readdirSync(newDir).map((f) => readFileSync(join(newDir, f), 'latin1'));

    const clean = swaks(port, [...from('127.0.0.1'), '--header', 'Subject: clean', '--body', 'just words\n']);
    assert.equal(clean.status, 0, clean.out);
    const gtubeRejected = swaks(port, [...from('127.0.0.1'), '--body', `${GTUBE}\n`]);
    assert.match(
      gtubeRejected.out,
      /<\*\* *554 5\.7\.1 message refused as spam \(score=\d+\.\d required=\d+\.\d\) \(#5\.7\.1\)/,
    );
    const gtubeTagged = swaks(port, [...from('127.0.0.2'), '--header', 'Subject: tagged', '--body', `${GTUBE}\n`]);
    assert.equal(gtubeTagged.status, 0, gtubeTagged.out);
    const virus = swaks(port, [...from('127.0.0.1'), '--body', `${EICAR}\n`]);
    assert.match(
      virus.out,
      /<\*\* *554 5\.7\.1 message refused: it contains a virus \(Quail-Test-EICAR\.UNOFFICIAL\) \(#5\.7\.1\)/,
    );
    const quarantined = swaks(port, [...from('127.0.0.3'), '--body', `${EICAR}\n`]);
    assert.equal(quarantined.status, 0, quarantined.out);

    await waitFor(
      () => readdirSync(newDir).length === 2,
      60_000,
      () => `two deliveries; log:\n${q.log()}`,
    );
    await waitFor(
      () => queuedCount(root) === 0,
      30_000,
      () => 'queue empty',
    );
    const got = delivered();
    const cleanMsg = got.find((m) => m.includes('Subject: clean')) ?? '';
    assert.match(cleanMsg, /^X-Quail-Filter: clamd clean; spamd not spam score=-?\d+\.\d required=\d+\.\d$/m);
    assert.match(cleanMsg, /^X-Spam-Status: No, /m);
    const tagged = got.find((m) => m.includes('Subject: tagged')) ?? '';
    assert.match(tagged, /^X-Quail-Filter: clamd clean; spamd spam score=\d+\.\d required=\d+\.\d, tagged$/m);
    assert.match(tagged, /^X-Spam-Flag: YES$/m);
    const qdir = join(root, 'queue', 'quarantine');
    assert.ok(existsSync(qdir), 'quarantine directory');
    const qfiles = readdirSync(qdir);
    assert.equal(qfiles.filter((f) => !f.endsWith('.env')).length, 1, qfiles.join(' '));
    const qmsg = qfiles.find((f) => !f.endsWith('.env')) ?? '';
    assert.match(readFileSync(join(qdir, qmsg), 'latin1'), /EICAR-STANDARD/);
    assert.match(readFileSync(join(qdir, `${qmsg}.env`), 'latin1'), /virus Quail-Test-EICAR/);
  } finally {
    stop();
    for (const d of daemons) d.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
});
