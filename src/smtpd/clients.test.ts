// Real clients against the listener on 127.0.0.1: swaks and Python's smtplib, STARTTLS included.
// tier: system (needs python3, swaks)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { harness } from '../../test/support/smtpd.js';

const run = promisify(execFile);

void test('swaks: plain and STARTTLS submissions are queued once each', async () => {
  const h = await harness({ tls: true });
  try {
    await run('swaks', [
      '--server',
      `127.0.0.1:${h.port}`,
      '--from',
      'a@b.test',
      '--to',
      'joe@local.test',
      '--silent',
      '2',
    ]);
    const tls = await run('swaks', [
      '--server',
      `127.0.0.1:${h.port}`,
      '--from',
      'a@b.test',
      '--to',
      'ann@local.test',
      '-tls',
    ]);
    assert.match(tls.stdout, /TLS started/);
    assert.deepEqual(
      h.queued.map((q) => q.recipients),
      [['joe@local.test'], ['ann@local.test']],
    );
    assert.match(
      h.queued[1]?.data ?? '',
      /^Received: from unknown \(HELO [^)]*\) \(127\.0\.0\.1\)\n {2}by mx\.local\.test with ESMTPS; /,
    );
  } finally {
    await h.close();
  }
});

void test('python smtplib: EHLO, STARTTLS, sendmail; a refused recipient raises', async () => {
  const h = await harness({ tls: true });
  const script = `
import smtplib, ssl, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.ehlo()
assert s.has_extn('starttls') and s.has_extn('pipelining') and s.has_extn('8bitmime')
s.starttls(context=ssl._create_unverified_context())
s.ehlo()
assert not s.has_extn('starttls')
s.sendmail('a@b.test', ['py@local.test'], b'Subject: py\\r\\n\\r\\nhi \\xc3\\xa9\\r\\n.dot\\r\\n')
try:
    s.sendmail('a@b.test', ['x@remote.test'], b'Subject: no\\r\\n\\r\\nno\\r\\n')
    print('relayed')
except smtplib.SMTPRecipientsRefused as e:
    print('refused', e.recipients['x@remote.test'][0])
s.quit()
`;
  try {
    const { stdout } = await run('python3', ['-c', script, String(h.port)]);
    assert.equal(stdout.trim(), 'refused 553');
    assert.equal(h.queued.length, 1);
    assert.match(h.queued[0]?.data ?? '', /\nSubject: py\n\nhi \xc3\xa9\n\.dot\n$/);
  } finally {
    await h.close();
  }
});

void test('commands pipelined before the TLS handshake are dropped (RFC 3207 4.2)', async () => {
  const h = await harness({ tls: true, env: { TCPREMOTEIP: '192.0.2.9' } });
  try {
    const raw = connect({ host: '127.0.0.1', port: h.port });
    let plain = '';
    raw.on('data', (c: Buffer) => (plain += c.toString('latin1')));
    raw.write('EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@x.test>\r\n');
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (plain.includes('220 2.0.0 ready to start TLS\r\n')) {
          raw.removeAllListeners('data');
          resolve();
        } else setTimeout(check, 5);
      };
      check();
    });
    const secure = tlsConnect({ socket: raw, rejectUnauthorized: false });
    await new Promise((r) => secure.once('secureConnect', r));
    let out = '';
    secure.on('data', (c: Buffer) => (out += c.toString('latin1')));
    secure.end('EHLO c\r\nRCPT TO:<joe@local.test>\r\nQUIT\r\n');
    await new Promise((r) => secure.once('close', r));
    assert.doesNotMatch(plain, /250 2\.1\.0/); // the pipelined MAIL was never answered
    assert.match(out, /250 AUTH PLAIN LOGIN\r\n503 5\.5\.1 MAIL first \(#5\.5\.1\)\r\n221 /);
  } finally {
    await h.close();
  }
});
