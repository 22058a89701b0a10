// Listeners with their own policy (control/listeners options): seed 003's two instances on two addresses, one
// accepting mail for its rcpthosts, one behaving as if rcpthosts were empty; auth= and tls=required.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { harness, talk } from '../../test/support/smtpd.js';
import { Wire } from '../../test/support/hostile-wire.js';

const CONTROL = { me: 'mx.example.com\n', rcpthosts: 'example.com\n' };
const TO_LOCAL = 'EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@example.com>\r\nQUIT\r\n';

void test('listeners: two addresses, two acceptances — rcpthosts=none refuses every domain, the other accepts its own', async () => {
  const mx = await harness({ host: '127.0.0.2', control: CONTROL });
  const sub = await harness({ host: '127.0.0.3', control: CONTROL, options: { rcpthosts: 'none' } });
  try {
    assert.match(await talk(mx.port, TO_LOCAL, '127.0.0.2'), /250 2\.1\.5 ok\r\n221 /);
    assert.match(
      await talk(sub.port, TO_LOCAL, '127.0.0.3'),
      /553 5\.7\.1 sorry, that domain isn't in my list of allowed rcpthosts/,
    );
    // RELAYCLIENT (tcp.smtp) still relays on the rcpthosts=none instance: "only authorized IP addresses".
    const relay = await harness({
      host: '127.0.0.3',
      control: { ...CONTROL, 'tcp.smtp': '127.:allow,RELAYCLIENT=""\n' },
      options: { rcpthosts: 'none' },
    });
    try {
      assert.match(await talk(relay.port, TO_LOCAL, '127.0.0.3'), /250 2\.1\.5 ok\r\n221 /);
    } finally {
      await relay.close();
    }
  } finally {
    await mx.close();
    await sub.close();
  }
});

void test('listeners: auth=required asks for AUTH at MAIL; auth=off never offers it; tls=required wants STARTTLS first', async () => {
  const req = await harness({ control: CONTROL, options: { auth: 'required' } });
  const off = await harness({
    control: { ...CONTROL, 'tcp.smtp': ':allow,QUAIL_CLEARAUTH="1"\n' },
    options: { auth: 'off' },
  });
  const on = await harness({ control: { ...CONTROL, 'tcp.smtp': ':allow,QUAIL_CLEARAUTH="1"\n' } });
  const tls = await harness({ control: CONTROL, tls: true, options: { tls: 'required' } });
  try {
    assert.match(await talk(req.port, TO_LOCAL), /530 5\.7\.0 authentication required/);
    assert.doesNotMatch(await talk(off.port, 'EHLO c\r\nQUIT\r\n'), /AUTH/);
    assert.match(await talk(off.port, 'EHLO c\r\nAUTH PLAIN AGpvZQB4\r\nQUIT\r\n'), /\r\n5\d\d /);
    assert.match(await talk(on.port, 'EHLO c\r\nQUIT\r\n'), /250-AUTH PLAIN LOGIN|250 AUTH PLAIN LOGIN/);
    const t = await talk(tls.port, TO_LOCAL);
    assert.match(t, /STARTTLS/);
    assert.match(t, /530 5\.7\.0 Must issue a STARTTLS command first/);
  } finally {
    for (const h of [req, off, on, tls]) await h.close();
  }
});

void test('listeners: rcpthosts=FILE and tcprules=FILE replace control/rcpthosts and control/tcp.smtp for that listener', async () => {
  const control = {
    ...CONTROL,
    'rcpthosts.sub': 'other.test\n',
    'tcp.smtp': '127.:allow,RELAYCLIENT=""\n',
    'tcp.sub': '127.0.0.4:deny\n:allow\n',
  };
  const mx = await harness({ control });
  const sub = await harness({ control, options: { rcpthosts: 'rcpthosts.sub', tcprules: 'tcp.sub' } });
  const missing = await harness({ control, options: { rcpthosts: 'nosuchfile' } });
  const noRules = await harness({ control, options: { tcprules: 'nosuchrules' } });
  const toOther = 'EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@other.test>\r\nQUIT\r\n';
  try {
    // the common tcp.smtp gives 127. RELAYCLIENT: everything goes through on the first listener
    assert.match(await talk(mx.port, toOther), /250 2\.1\.5 ok\r\n221 /);
    // the second reads tcp.sub (no RELAYCLIENT) and rcpthosts.sub: its own domain only
    assert.match(await talk(sub.port, toOther), /250 2\.1\.5 ok\r\n221 /);
    assert.match(
      await talk(sub.port, TO_LOCAL),
      /553 5\.7\.1 sorry, that domain isn't in my list of allowed rcpthosts/,
    );
    // tcp.sub's deny line refuses 127.0.0.4 on that listener only
    const denied = await Wire.connect(sub.port, { localAddress: '127.0.0.4' });
    assert.match(await denied.reply(), /^5\d\d /);
    denied.destroy();
    const other = await Wire.connect(mx.port, { localAddress: '127.0.0.4' });
    assert.match(await other.reply(), /^220 /);
    other.destroy();
    // a listener naming a missing rcpthosts file refuses the session: never accept every domain by mistake
    assert.match(await talk(missing.port, TO_LOCAL), /^421 unable to read controls/);
    // a missing tcprules file is no rules (tcpserver without its cdb): served, but no RELAYCLIENT
    assert.match(
      await talk(noRules.port, toOther),
      /553 5\.7\.1 sorry, that domain isn't in my list of allowed rcpthosts/,
    );
  } finally {
    for (const h of [mx, sub, missing, noRules]) await h.close();
  }
});
