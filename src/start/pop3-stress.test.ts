// POP3 stress mode through a running `quail start`: idle clients filling a pop3 listener's maxconn are logged out
// after stresstimeout= seconds instead of idle='s ten minutes (and those silent after STLS instead of a minute), so a
// real client gets in (python3 poplib).
// tier: system (needs quail start, python3, 127.0.0.2-127.0.0.5 on lo)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, quail, startProcess, waitFor, type QuailProcess } from '../../test/support/start.js';
import { Wire } from '../../test/support/hostile-wire.js';

const MAXCONN = 12;

const POPLIB = `import poplib,sys
p=poplib.POP3('127.0.0.1',int(sys.argv[1]),timeout=20)
p.user('joe@example.test'); p.pass_('joe-secret')
print('STAT',p.stat()[0]); p.quit()`;

void test('pop3 stress mode: idle clients filling maxconn are logged out after stresstimeout=, a real client gets in', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-pop3-stress-'));
  chmodSync(dir, 0o755); // as root the POP3 child runs as control/quailuser and must reach the mail root
  const root = join(dir, 'root');
  quail(['init', '--root', root, '--me', 'mx.test']);
  quail(['domain', 'add', 'example.test', '--root', root]);
  quail(['user', 'add', 'joe@example.test', '--password', 'joe-secret', '--root', root]);
  const port = await freePort();
  writeFileSync(
    join(root, 'control', 'listeners'),
    `127.0.0.1:${port} pop3 plaintext=loopback maxconn=${MAXCONN} maxperip=50 stresstimeout=3\n`,
  );
  let q: QuailProcess | undefined;
  const wires: Wire[] = [];
  try {
    q = await startProcess(root, 30_000, {}, false);
    const log = q.log;
    for (let i = 0; i < MAXCONN; i++) {
      const w = await Wire.connect(port, { localAddress: `127.0.0.${2 + (i % 4)}` });
      assert.match(await w.reply(), /^\+OK /, `holder ${i} is greeted`);
      wires.push(w);
    }
    // Half of them start TLS and send no handshake byte: that wait (60 s without stress) is capped too.
    const silentTls = wires.filter((_, i) => i % 2 === 1);
    for (const w of silentTls) {
      w.send('STLS\r\n');
      assert.match(await w.line(), /^\+OK/, 'STLS is offered');
    }
    // the listener is full: without stress mode these would hold it for idle='s 600 s
    await waitFor(() => /pop3\.stress on=true/.test(log()), 10_000, log);
    await waitFor(() => /pop3\.stress on=false/.test(log()), 30_000, log);
    const cut = wires.filter((w) => w.received.includes('-ERR autologout') || w.closed);
    assert.ok(cut.length >= MAXCONN / 2, `${cut.length} idle holders were logged out`);
    // at least seven were cut before stress mode ended, so some of those silent after STLS
    await waitFor(
      () => silentTls.some((w) => w.closed),
      10_000,
      () => `no client silent after STLS was cut\n${log()}`,
    );
    const r = spawnSync('python3', ['-c', POPLIB, String(port)], { encoding: 'latin1' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}\n${log()}`);
    assert.match(r.stdout, /STAT \d+/);
  } finally {
    for (const w of wires) w.destroy();
    q?.killGroup();
    await q?.exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
