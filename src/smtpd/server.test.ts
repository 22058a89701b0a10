// Black-box tests of the SMTP listener on 127.0.0.1: smuggling, open relay, limits, queue commit, AUTH, tcp.smtp.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QuailError, splitAddress } from '../core/index.js';
import { harness, talk } from '../../test/support/smtpd.js';

const REMOTE = { TCPREMOTEIP: '192.0.2.9', TCPLOCALHOST: 'mx.local.test' };
const head = 'EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@local.test>\r\nDATA\r\nSubject: s\r\n\r\nhello';
const smuggled = 'MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@local.test>\r\nDATA\r\nsmuggled\r\n';

void test('TCPLOCALIP: a listener bound to one address gives its own (the Received line says it without TCPLOCALHOST)', async () => {
  const h = await harness({ host: '127.0.0.3', control: { 'tcp.smtp': '127.:allow,=TCPLOCALHOST\n' } });
  try {
    const msg = 'HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@local.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n';
    assert.match(await talk(h.port, msg, '127.0.0.3'), /250 ok/);
    assert.match(h.queued[0]?.data ?? '', /\n {2}by 127\.0\.0\.3 with SMTP;/);
  } finally {
    await h.close();
  }
});

void test('SMTP smuggling: no variant ever yields a second message', async () => {
  const variants = ['\n.\n', '\n.\r\n', '\r.\r', '\r\n.\n', '\r\n.\r', '\0\r\n.\0\r\n'];
  for (const v of variants) {
    const h = await harness({ env: REMOTE });
    try {
      const out = await talk(h.port, `${head}${v}${smuggled}\r\n.\r\nQUIT\r\n`);
      assert.ok(h.queued.length <= 1, JSON.stringify(v));
      assert.ok(!h.queued.some((q) => q.recipients.includes('victim@local.test')), JSON.stringify(v));
      assert.equal(out.split('354 ').length - 1, 1, `one DATA only for ${JSON.stringify(v)}: ${out}`);
      assert.match(
        out,
        /\r\n(451 4\.6\.0 See https:\/\/cr\.yp\.to\/docs\/smtplf\.html\.|554 5\.6\.0 sorry, the message contains a (bare CR|NUL byte))/,
      );
      assert.equal(h.queued.length, 0, `the message with ${JSON.stringify(v)} is refused`);
    } finally {
      await h.close();
    }
  }
});

void test('open-relay battery: tricks are refused without relay permission; what is accepted stays local (strict and QUAIL_LOOSE)', async () => {
  // [address, strict reply, QUAIL_LOOSE (qmail) reply]: strict refuses what RFC 5321 does not allow (501) before the relay check.
  const cases: Array<[string, number, number]> = [
    ['user%victim.test@local.test', 250, 250],
    ['user@victim.test', 553, 553],
    ['@local.test:user@victim.test', 553, 553],
    ['@local.test,@x.test:user@victim.test', 553, 553],
    ['"user@victim.test"', 501, 553],
    ['"user@victim.test"@local.test', 250, 250],
    ['victim.test!user', 501, 250],
    ['user@[192.0.2.77]', 553, 553],
    ['user@[127.0.0.1]', 250, 250],
    ['user@victim.test.', 501, 553],
    ['user@local.test.', 501, 553],
    ['user@VICTIM.TEST', 553, 553],
    ['user@LOCAL.TEST', 250, 250],
    ['user@local.test@victim.test', 501, 553],
    ['user@local.test.victim.test', 553, 553],
    ['user@xlocal.test', 553, 553],
    ['user\\@victim.test', 501, 553],
    ['user@victim.test\\', 501, 553],
  ];
  for (const [mode, col] of [
    ['strict', 1],
    ['loose', 2],
  ] as const) {
    const env = mode === 'loose' ? { ...REMOTE, QUAIL_LOOSE: '1' } : REMOTE;
    const h = await harness({
      env,
      control: { me: 'local.test\n', rcpthosts: 'local.test\n' },
      limits: { tarpitAfter: 100 },
    });
    try {
      const rcpts = cases.map(([a]) => `RCPT TO:<${a}>\r\n`).join('');
      const out = await talk(h.port, `HELO c\r\nMAIL FROM:<a@b.test>\r\n${rcpts}DATA\r\nhi\r\n.\r\nQUIT\r\n`);
      const codes = out
        .split('\r\n')
        .slice(3, 3 + cases.length)
        .map((l) => Number(l.slice(0, 3)));
      assert.deepEqual(
        codes,
        cases.map((c) => c[col]),
        `${mode}: ${out}`,
      );
      assert.equal(h.queued.length, 1);
      for (const r of h.queued[0]?.recipients ?? []) {
        const a = splitAddress(r);
        assert.ok(!a.hasAt || a.domain.toLowerCase() === 'local.test', `accepted ${r} must be local`);
      }
    } finally {
      await h.close();
    }
  }
});

void test('RELAYCLIENT from tcp.smtp is appended; deny refuses the connection', async () => {
  const h = await harness({ control: { 'tcp.smtp': '127.:allow,RELAYCLIENT="@gw.test"\n' } });
  try {
    await talk(h.port, 'HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@remote.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n');
    assert.deepEqual(h.queued[0]?.recipients, ['joe@remote.test@gw.test']);
  } finally {
    await h.close();
  }
  const d = await harness({ control: { 'tcp.smtp': '127.0.0.1:deny\n:allow\n' } });
  try {
    assert.equal(await talk(d.port, 'HELO c\r\n'), '554 sorry, this host may not use this server (#5.7.1)\r\n');
  } finally {
    await d.close();
  }
});

void test('verbs named like Object.prototype members are unknown commands, not handlers', async () => {
  const h = await harness({});
  try {
    const out = await talk(h.port, 'HELO c\r\nconstructor\r\n__proto__ x\r\ntoString\r\nhasOwnProperty\r\nQUIT\r\n');
    assert.equal(out.match(/^502 unimplemented \(#5\.5\.1\)\r$/gm)?.length, 4, out);
    assert.match(out, /\r\n221 /);
  } finally {
    await h.close();
  }
});

void test('250 only after the commit; a queue failure is 451 and nothing is kept', async () => {
  let failWith: Error | undefined;
  const h = await harness({
    env: REMOTE,
    onCommit: () => {
      if (failWith !== undefined) throw failWith;
    },
  });
  try {
    const msg = 'HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@local.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n';
    failWith = new QuailError('qq write error or disk full (#4.3.0)', true);
    assert.match(await talk(h.port, msg), /354 go ahead\r\n451 qq write error or disk full \(#4\.3\.0\)\r\n221 /);
    failWith = new Error('EIO: something internal');
    assert.match(await talk(h.port, msg), /354 go ahead\r\n451 qq temporary problem \(#4\.3\.0\)\r\n221 /);
    assert.equal(h.queued.length, 0);
    failWith = undefined;
    assert.match(await talk(h.port, msg), /354 go ahead\r\n250 ok \d+ qp test-1\r\n221 /);
    assert.equal(h.queued.length, 1);
  } finally {
    await h.close();
  }
});

void test('limits: recipients per message, errors, connections, line length, SIZE', async () => {
  const h = await harness({
    env: REMOTE,
    options: { maxrcpt: '2' },
    limits: { maxErrors: 4, tarpitAfter: 100 },
    control: { databytes: '100\n' },
  });
  try {
    const out = await talk(
      h.port,
      'HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<a@local.test>\r\nRCPT TO:<b@local.test>\r\nRCPT TO:<c@local.test>\r\nQUIT\r\n',
    );
    assert.match(out, /250 ok\r\n250 ok\r\n452 too many recipients/);
    const errs = await talk(h.port, 'HELO c\r\nX1\r\nX2\r\nX3\r\nX4\r\nX5\r\nQUIT\r\n');
    assert.match(
      errs,
      /502 unimplemented \(#5\.5\.1\)\r\n421 too many errors, closing the connection \(#4\.7\.0\)\r\n$/,
    );
    assert.match(
      await talk(h.port, `HELO ${'x'.repeat(5000)}\r\nQUIT\r\n`),
      /^220 [^\r]*\r\n500 line too long \(#5\.5\.2\)\r\n221 /,
    );
    assert.match(
      await talk(h.port, 'EHLO c\r\nMAIL FROM:<a@b.test> SIZE=101\r\nQUIT\r\n'),
      /552 5\.3\.4 sorry, that message size exceeds my databytes limit/,
    );
    assert.match(
      await talk(h.port, 'HELO c\r\nRSET\rNOOP\r\nQUIT\r\n'),
      /501 syntax error: bare CR or NUL in a command line/,
    );
  } finally {
    await h.close();
  }
  const one = await harness({ maxConnections: 1 });
  try {
    const { connect } = await import('node:net');
    const first = connect({ host: '127.0.0.1', port: one.port });
    await new Promise((r) => first.once('data', r));
    assert.equal(await talk(one.port, 'QUIT\r\n'), '421 too many connections, try again later (#4.7.0)\r\n');
    first.destroy();
    // After QUIT's 221 the server closes its socket at once, as qmail-smtpd does (src/smtpd/session.ts done()): the 221
    // arrives whole, and what the client sends after it meets a closed socket (a reset), where a lingering close
    // would read and drop it for up to 10 s; the next client is served
    const lingering = connect({ host: '127.0.0.1', port: one.port, allowHalfOpen: true });
    let got = '';
    lingering.on('data', (b: Buffer) => (got += b.toString('latin1')));
    const ended = new Promise((r) => lingering.once('end', r));
    const closed = new Promise<string>((r) => {
      lingering.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
      lingering.once('close', () => r('close'));
    });
    await new Promise((r) => lingering.once('data', r));
    lingering.write('QUIT\r\n');
    await ended;
    assert.match(got, /\r\n221 /);
    // the first write after the close draws the reset, the next one fails on it (the client no longer reads: EOF seen)
    lingering.write('NOOP\r\n');
    await new Promise((r) => setTimeout(r, 200));
    lingering.write('NOOP\r\n');
    const late = await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open after 3 s'), 3000))]);
    assert.match(String(late), /^(ECONNRESET|EPIPE|close)$/, 'the server had closed its socket after the 221');
    assert.match(await talk(one.port, 'QUIT\r\n'), /^220 [^]*221 /);
    lingering.destroy();
  } finally {
    await one.close();
  }
});

void test('AUTH: not offered in clear to remote clients; submission needs it; an injected directory decides', async () => {
  const remote = await harness({ env: REMOTE, kind: 'submission' });
  try {
    const out = await talk(remote.port, 'EHLO c\r\nAUTH PLAIN AHUAcA==\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n');
    assert.doesNotMatch(out, /AUTH PLAIN LOGIN/);
    assert.match(out, /538 5\.7\.11 encryption required/);
    assert.match(out, /530 5\.7\.0 authentication required/);
  } finally {
    await remote.close();
  }
  const CLEAR = { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' };
  const none = await harness({ kind: 'submission', control: CLEAR });
  try {
    assert.match(
      await talk(none.port, 'EHLO c\r\nAUTH PLAIN AHUAcA==\r\nQUIT\r\n'),
      /250 AUTH PLAIN LOGIN\r\n454 4\.7\.0 temporary authentication failure/,
    );
  } finally {
    await none.close();
  }
  const dir = await harness({
    kind: 'submission',
    control: CLEAR,
    authenticator: {
      verify: (u, p) =>
        Promise.resolve(
          u === 'u' && p === 'p' ? { ok: true, user: 'u@local.test' } : { ok: false, temporary: false, reason: 'bad' },
        ),
    },
  });
  try {
    const bad = await talk(dir.port, 'EHLO c\r\nAUTH LOGIN\r\ndQ==\r\neA==\r\nQUIT\r\n');
    assert.match(bad, /334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n535 5\.7\.8 authentication failed/);
    const good = await talk(
      dir.port,
      'EHLO c\r\nAUTH PLAIN AHUAcA==\r\nMAIL FROM:<u@local.test>\r\nRCPT TO:<x@remote.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n',
    );
    assert.match(good, /235 2\.7\.0 authentication successful/);
    assert.deepEqual(dir.queued[0]?.recipients, ['x@remote.test']);
    assert.match(dir.queued[0]?.data ?? '', /by mx\.local\.test with ESMTPA; /);
  } finally {
    await dir.close();
  }
});

void test('bare CR: refused by default; kept per client with QUAIL_BARECR="keep" in tcp.smtp; never smuggles', async () => {
  const msg =
    'HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@local.test>\r\nDATA\r\nline with\rCR inside\r\n.\r\nQUIT\r\n';
  const strict = await harness({ control: { 'tcp.smtp': '127.0.0.2:allow,QUAIL_BARECR="keep"\n:allow\n' } });
  try {
    assert.match(await talk(strict.port, msg), /554 sorry, the message contains a bare CR/);
    assert.equal(strict.queued.length, 0);
  } finally {
    await strict.close();
  }
  const keep = await harness({ control: { 'tcp.smtp': '127.:allow,QUAIL_BARECR="keep"\n' } });
  try {
    assert.match(await talk(keep.port, msg), /250 ok \d+ qp test-1\r\n221 /);
    assert.equal(keep.queued.length, 1);
    assert.match(keep.queued[0]?.data ?? '', /\nline with\rCR inside\n$/);
    // <CR>.<CR> still cannot end DATA or start a second message, and a bare LF is still refused
    const out = await talk(keep.port, `${head}\r.\r${smuggled}\r\n.\r\nQUIT\r\n`);
    assert.equal(out.split('354 ').length - 1, 1, out);
    assert.equal(keep.queued.length, 2);
    assert.deepEqual(keep.queued[1]?.recipients, ['joe@local.test']);
    assert.match(keep.queued[1]?.data ?? '', /hello\r\.\rMAIL FROM:<evil@x\.test>\nRCPT TO/);
    assert.match(
      await talk(keep.port, `${head}\n.\n${smuggled}\r\n.\r\n`),
      /451 4\.6\.0 See https:\/\/cr\.yp\.to\/docs\/smtplf\.html\./,
    );
    assert.equal(keep.queued.length, 2);
  } finally {
    await keep.close();
  }
});

void test('RCPT-time recipient check: 550 5.1.1 for unknown, 451 when the directory is down; AUTH login in Received and meta', async () => {
  const seen: string[] = [];
  const h = await harness({
    control: { 'tcp.smtp': '127.:allow,RELAYCLIENT="@gw.test",QUAIL_CLEARAUTH="1"\n' },
    recipients: {
      check: (a) => {
        seen.push(a);
        return Promise.resolve(a.startsWith('nobody@') ? 'unknown' : a.startsWith('x@down') ? 'temporary' : 'accept');
      },
    },
    authenticator: {
      verify: (u, p) =>
        Promise.resolve(p === 'p' ? { ok: true, user: u } : { ok: false, temporary: false, reason: 'bad' }),
    },
  });
  try {
    const out = await talk(
      h.port,
      'EHLO c\r\nAUTH PLAIN AGpvZUBleGFtcGxlLm9yZwBw\r\nMAIL FROM:<joe@example.org>\r\nRCPT TO:<nobody@local.test>\r\nRCPT TO:<x@down.test>\r\nRCPT TO:<joe@local.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n',
    );
    assert.match(
      out,
      /235 2\.7\.0 [^\n]*\n250 2\.1\.0 ok\r\n550 5\.1\.1 sorry, no mailbox here by that name \(#5\.1\.1\)\r\n451 4\.3\.0 temporary failure looking up the mailbox, try again later \(#4\.3\.0\)\r\n250 2\.1\.5 ok\r\n/,
    );
    // checked before RELAYCLIENT's suffix is appended; only the accepted one is queued (with the suffix)
    assert.deepEqual(seen, ['nobody@local.test', 'x@down.test', 'joe@local.test']);
    assert.deepEqual(h.queued[0]?.recipients, ['joe@local.test@gw.test']);
    assert.equal(h.queued[0]?.meta['auth'], 'joe@example.org');
    assert.match(
      h.queued[0]?.data ?? '',
      /^Received: from unknown \(HELO c\) \(joe@example\.org@127\.0\.0\.1\)\n {2}by mx\.local\.test with ESMTPA; /,
    );
  } finally {
    await h.close();
  }
});

void test('AUTH: a login the directory flags no-relay is authenticated but may not relay; others may', async () => {
  const h = await harness({
    control: { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' },
    authenticator: {
      verify: (u, p) => Promise.resolve(p === 'n' ? { ok: true, user: u, relay: false } : { ok: true, user: u }),
    },
  });
  try {
    const plain = (pw: string): string => Buffer.from(`\0u@x.test\0${pw}`).toString('base64');
    const session = (pw: string): string =>
      `EHLO c\r\nAUTH PLAIN ${plain(pw)}\r\nMAIL FROM:<u@x.test>\r\nRCPT TO:<far@remote.test>\r\nRCPT TO:<joe@local.test>\r\nQUIT\r\n`;
    assert.match(
      await talk(h.port, session('n')),
      /235 2\.7\.0 [^\n]*\n250 2\.1\.0 ok\r\n553 5\.7\.1 sorry, that domain isn't in my list of allowed rcpthosts \(#5\.7\.1\)\r\n250 2\.1\.5 ok\r\n/,
    );
    assert.match(
      await talk(h.port, session('y')),
      /235 2\.7\.0 [^\n]*\n250 2\.1\.0 ok\r\n250 2\.1\.5 ok\r\n250 2\.1\.5 ok\r\n/,
    );
  } finally {
    await h.close();
  }
});
