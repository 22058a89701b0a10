// greetdelay= (qmail's greetdelay patch) through a real socket: a client that talks before the 220 is refused 554.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { harness } from '../../test/support/smtpd.js';
import { Wire } from '../../test/support/hostile-wire.js';

void test('greetdelay=1: a patient client is greeted and served; one that talks first gets 554 and is dropped', async () => {
  const logs: Array<[string, Readonly<Record<string, unknown>>]> = [];
  const h = await harness({
    options: { greetdelay: '1' },
    control: { 'tcp.smtp': '127.0.0.9:allow,GREETDELAY="0"\n:allow\n' },
    log: (e, f) => logs.push([e, f]),
  });
  try {
    const eager = await Wire.connect(h.port, { localAddress: '127.0.0.2' });
    eager.send('EHLO early.test\r\nMAIL FROM:<a@b.test>\r\n');
    assert.equal(await eager.reply(), '554 5.5.0 SMTP protocol violation: the client talked before the greeting\r\n');
    assert.ok(await eager.closes(), 'dropped');
    assert.doesNotMatch(eager.received, /^220/m, 'never greeted');
    eager.destroy();
    assert.ok(logs.some(([e, f]) => e === 'smtp.refused' && f['why'] === 'pre-greet'));

    const patient = await Wire.connect(h.port, { localAddress: '127.0.0.3' });
    assert.match(await patient.reply(), /^220 mx\.local\.test ESMTP\r\n$/);
    patient.send('EHLO patient.test\r\n');
    assert.match(await patient.reply(), /^250-/);
    patient.destroy();

    // tcp.smtp's GREETDELAY="0" for one client, as with the patch: greeted at once, may pipeline from the start
    const trusted = await Wire.connect(h.port, { localAddress: '127.0.0.9' });
    trusted.send('EHLO trusted.test\r\n');
    assert.match(await trusted.reply(), /^220 /);
    assert.match(await trusted.reply(), /^250-/);
    trusted.destroy();
  } finally {
    await h.close();
  }
});
