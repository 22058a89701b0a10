// The spam folder end to end: real spamd tags GTUBE through quail filter; a mailbox with a spam folder gets it in
// Maildir/.Junk/, one without in its inbox; a sender's own spam tags (the filter not run) are never honoured.
// tier: system (needs quail start, swaks, spamd)
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
  quail,
  startProcess,
  swaks,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE' + '-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

void test('spam folder: GTUBE tagged by spamd lands in .Junk with the setting, in the inbox without; forged tags ignored', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-junk-'));
  const r = ['--root', root];
  let spamd: ChildProcess | undefined;
  let q: QuailProcess | undefined;
  try {
    chmodSync(root, 0o755);
    const spamPort = await freePort();
    spamd = spawn(
      'spamd',
      ['--listen', `127.0.0.1:${spamPort}`, '-L', '-u', 'nobody', '--max-children', '1', '-s', 'stderr'],
      { stdio: 'ignore' },
    );
    quail(['init', ...r, '--me', 'mx.junk.test']);
    quail(['domain', 'add', 'a.test', ...r]);
    quail(['user', 'add', 'joe@a.test', '--password', 'joe secret', ...r]);
    quail(['user', 'add', 'ann@a.test', '--password', 'ann secret', ...r]);
    // the CLI's setting, through src/access as the web's
    assert.match(quail(['user', 'mod', 'joe@a.test', '--spam-folder', 'Junk', ...r]), /^spam: {6}folder Junk /m);
    const bin = join(root, 'bin');
    mkdirSync(bin, { recursive: true, mode: 0o755 });
    writeFileSync(join(bin, 'quail'), `#!/bin/sh\nexec ${process.execPath} ${MAIN} "$@"\n`, { mode: 0o755 });
    writeFileSync(join(bin, 'quail-filter'), '#!/bin/sh\nexec quail filter\n', { mode: 0o755 });
    // 127.0.0.1 goes through the filter; 127.0.0.2 does not (what it writes is the sender's own)
    writeFileSync(
      join(root, 'control', 'tcp.smtp'),
      `127.0.0.1:allow,QMAILQUEUE="${join(bin, 'quail-filter')}",QUAIL_SPAMD="127.0.0.1:${spamPort}",QUAIL_SPAMACTION="tag"\n127.0.0.2:allow\n`,
    );
    writeFileSync(join(root, 'control', 'listeners'), '127.0.0.1:0 smtp\n');
    const deadline = Date.now() + 120_000;
    while (!(await listening(spamPort))) {
      assert.ok(Date.now() < deadline, 'spamd did not listen in 120 s');
      await new Promise((res) => setTimeout(res, 200));
    }
    q = await startProcess(root, 30_000, { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` });
    const log = (): string => q?.log() ?? '';
    const port = listenerPort(root, 'smtp');
    const send = (to: string, ip: string, extra: string[]): void => {
      const s = swaks(port, ['--to', to, '--local-interface', ip, ...extra]);
      assert.equal(s.status, 0, s.out);
    };
    send('joe@a.test', '127.0.0.1', ['--header', 'Subject: spam for joe', '--body', `${GTUBE}\n`]);
    send('ann@a.test', '127.0.0.1', ['--header', 'Subject: spam for ann', '--body', `${GTUBE}\n`]);
    send('joe@a.test', '127.0.0.1', ['--header', 'Subject: ham for joe', '--body', 'just words\n']);
    // a sender writing the filter's own fields, through a listener without the filter
    send('joe@a.test', '127.0.0.2', [
      '--add-header',
      'X-Quail-Filter: spamd spam score=99.0 required=5.0, tagged',
      '--add-header',
      'X-Spam-Status: Yes, score=99.0 required=5.0',
      '--add-header',
      'X-Spam-Flag: YES',
      '--header',
      'Subject: forged tag',
      '--body',
      'not spam\n',
    ]);
    const md = (box: string, folder = ''): string => join(root, 'domains', 'a.test', box, 'Maildir', folder, 'new');
    const subjects = (dir: string): string[] =>
      existsSync(dir)
        ? readdirSync(dir)
            .map((f) => /^Subject: (.*)$/m.exec(readFileSync(join(dir, f), 'latin1'))?.[1] ?? '?')
            .sort()
        : [];
    await waitFor(
      () => subjects(md('joe')).length + subjects(md('joe', '.Junk')).length + subjects(md('ann')).length === 4,
      120_000,
      log,
    );
    await waitFor(() => queuedCount(root) === 0, 30_000, log);
    assert.deepEqual(subjects(md('joe', '.Junk')), ['spam for joe']);
    assert.deepEqual(subjects(md('joe')), ['forged tag', 'ham for joe']);
    assert.deepEqual(subjects(md('ann')), ['spam for ann']);
    assert.equal(existsSync(join(root, 'domains', 'a.test', 'ann', 'Maildir', '.Junk')), false);
    const junk = join(root, 'domains', 'a.test', 'joe', 'Maildir', '.Junk');
    for (const f of ['tmp', 'cur', 'maildirfolder']) assert.ok(existsSync(join(junk, f)), f);
    assert.match(readFileSync(join(root, 'domains', 'a.test', 'joe', 'Maildir', 'subscriptions'), 'utf8'), /^Junk$/m);
    // turned off at the command line: spam to the inbox again
    quail(['user', 'mod', 'joe@a.test', '--no-spam-folder', ...r]);
    send('joe@a.test', '127.0.0.1', ['--header', 'Subject: spam again', '--body', `${GTUBE}\n`]);
    await waitFor(() => subjects(md('joe')).includes('spam again'), 120_000, log);
    assert.deepEqual(subjects(md('joe', '.Junk')), ['spam for joe']);
  } finally {
    q?.child.kill('SIGTERM');
    await q?.exited;
    q?.killGroup();
    spamd?.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});
