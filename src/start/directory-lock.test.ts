// A directory locked by another process (an admin's sqlite3, a long CLI transaction) holds up only the commands that
// tier: system (needs quail start)
// need it: the SMTP process answers its other sessions meanwhile, and the waiting RCPT once the lock is gone.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { BOX, Hostile } from '../../test/support/hostile.js';
import { freshLoopback, Wire } from '../../test/support/hostile-wire.js';
import { holdSqliteLock } from '../../test/support/sqlite-lock.js';
import { sleep } from '../../test/support/start.js';
import { SQLITE_FILE } from '../directory/index.js';

void test('a locked directory delays the RCPT that looks in it, not the other sessions of the SMTP process', async () => {
  const h = await Hostile.start('directory-lock');
  let lock: Awaited<ReturnType<typeof holdSqliteLock>> | undefined;
  try {
    const a = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
    const b = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
    assert.deepEqual([await a.code(), await b.code()], [220, 220]);
    a.send('EHLO a.test\r\nMAIL FROM:<a@client.test>\r\n');
    b.send('EHLO b.test\r\n');
    assert.deepEqual([await a.code(), await a.code(), await b.code()], [250, 250, 250]);

    lock = await holdSqliteLock(join(h.root, SQLITE_FILE));
    a.send(`RCPT TO:<${BOX}>\r\n`); // hostile.test is the directory's: the check reads it, and meets the lock
    // The other session is answered again and again while the RCPT waits. Once the RCPT has reached the SMTP process
    // (whenever that is within this second: nothing is asserted of the time), a process frozen by the wait would answer
    // no NOOP before the RCPT's 451, which would then be in a's bytes.
    const before = a.received.length;
    for (let i = 0; i < 5; i++) {
      await sleep(200);
      b.send('NOOP\r\n');
      assert.match(await b.reply(), /^250 /, 'the other session is answered while the directory is locked');
      assert.equal(a.received.length, before, `the RCPT waits for the lock: ${a.received.slice(before)}`);
    }

    await lock.release();
    lock = undefined;
    assert.match(await a.reply(), /^250 /, 'the RCPT is answered once the lock is gone, and not with a 451');
    a.send('QUIT\r\n');
    b.send('QUIT\r\n');
    assert.deepEqual([await a.code(), await b.code()], [221, 221]);
    a.destroy();
    b.destroy();
  } finally {
    lock?.kill();
    await h.stop();
  }
});
