// The SMTP process at two edges of its life, through a running `quail start`: a control file it reads per connection
// tier: system (needs quail start)
// becoming unreadable (control/me a directory) costs the next client a 421 and nothing else; and a stop tells an
// idle session `421 server shutting down` at once instead of cutting it without a word after the grace period.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, renameSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Hostile } from '../../test/support/hostile.js';
import { freshLoopback, Wire } from '../../test/support/hostile-wire.js';

void test('control/me unreadable: the next client gets 421 unable to read controls, the other sessions and the process go on', async () => {
  const h = await Hostile.start('smtp-edges-controls');
  try {
    const a = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
    assert.equal(await a.code(), 220);
    a.send('EHLO a.test\r\n');
    assert.equal(await a.code(), 250);

    const me = join(h.root, 'control', 'me');
    renameSync(me, `${me}.kept`);
    mkdirSync(me); // EISDIR when read, for root and for the SMTP process's account alike
    try {
      const b = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
      assert.match(await b.reply(), /^421 unable to read controls \(#4\.3\.0\)\r\n$/);
      assert.ok(await b.closes());
      a.send('NOOP\r\n');
      assert.match(await a.reply(), /^250 /, 'the session already open is still served');
    } finally {
      rmdirSync(me);
      renameSync(`${me}.kept`, me);
    }
    const c = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
    assert.match(await c.reply(), /^220 /, 'once the file is back, clients are greeted');
    assert.doesNotMatch(h.log(), /smtpd\.(?:crashed|died)/);
    assert.ok(existsSync(`/proc/${h.pids.smtpd}`), 'the same SMTP process serves');
    for (const w of [a, c]) w.destroy();
  } finally {
    await h.stop();
  }
});

void test('a stop tells an idle session 421 server shutting down, at once', async () => {
  const h = await Hostile.start('smtp-edges-stop');
  let stopped: Promise<void> | undefined;
  try {
    const a = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
    assert.equal(await a.code(), 220);
    a.send('EHLO a.test\r\nMAIL FROM:<a@client.test>\r\n');
    assert.deepEqual([await a.code(), await a.code()], [250, 250]);
    stopped = h.stop();
    // well within the stop's grace period (10 s), after which the session would be cut without a reply
    assert.match(await a.reply(5_000), /^421 4\.3\.2 server shutting down/);
    assert.ok(await a.closes());
  } finally {
    await (stopped ?? h.stop());
  }
});
