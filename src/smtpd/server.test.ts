// Black-box tests of the SMTP listener on 127.0.0.1: smuggling, open relay, limits, queue commit, AUTH, tcp.smtp.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QuailError, splitAddress } from '../address/index.js';
import { LoginThrottle } from '../throttle/index.js';
import type { Authenticator } from './auth.js';
import { harness, talk } from './testkit.js';

const REMOTE = { TCPREMOTEIP: '192.0.2.9', TCPLOCALHOST: 'mx.local.test' };
const head = 'EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@local.test>\r\nDATA\r\nSubject: s\r\n\r\nhello';
const smuggled = 'MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@local.test>\r\nDATA\r\nsmuggled\r\n';

void test('SMTP smuggling: no variant ever yields a second message', async () => {
  const variants = ['\n.\n', '\n.\r\n', '\r.\r', '\r\n.\n', '\r\n.\r', '\0\r\n.\0\r\n'];
  for (const v of variants) {
    const h = await harness({ env: REMOTE });
    try {
      const out = await talk(h.port, `${head}${v}${smuggled}\r\n.\r\nQUIT\r\n`);
      assert.ok(h.queued.length <= 1, JSON.stringify(v));
      assert.ok(!h.queued.some((q) => q.recipients.includes('victim@local.test')), JSON.stringify(v));
      assert.equal(out.split('354 ').length - 1, 1, `one DATA only for ${JSON.stringify(v)}: ${out}`);
      assert.match(out, /\r\n(451 4\.6\.0 See https:\/\/cr\.yp\.to\/docs\/smtplf\.html\.|554 5\.6\.0 sorry, the message contains a (bare CR|NUL byte))/);
      assert.equal(h.queued.length, 0, `the message with ${JSON.stringify(v)} is refused`);
    } finally {
      await h.close();
    }
  }
});

void test('open-relay battery: tricks are refused without relay permission; what is accepted stays local (strict and QUAIL_LOOSE)', async () => {
  // [address, strict reply, QUAIL_LOOSE (qmail) reply]: strict refuses what RFC 5321 does not allow (501) before the relay check.
  const cases: Array<[string, number, number]> = [
    ['user%victim.test@local.test', 250, 250], ['user@victim.test', 553, 553], ['@local.test:user@victim.test', 553, 553],
    ['@local.test,@x.test:user@victim.test', 553, 553], ['"user@victim.test"', 501, 553], ['"user@victim.test"@local.test', 250, 250],
    ['victim.test!user', 501, 250], ['user@[192.0.2.77]', 553, 553], ['user@[127.0.0.1]', 250, 250], ['user@victim.test.', 501, 553],
    ['user@local.test.', 501, 553], ['user@VICTIM.TEST', 553, 553], ['user@LOCAL.TEST', 250, 250], ['user@local.test@victim.test', 501, 553],
    ['user@local.test.victim.test', 553, 553], ['user@xlocal.test', 553, 553], ['user\\@victim.test', 501, 553], ['user@victim.test\\', 501, 553],
  ];
  for (const [mode, col] of [['strict', 1], ['loose', 2]] as const) {
    const env = mode === 'loose' ? { ...REMOTE, QUAIL_LOOSE: '1' } : REMOTE;
    const h = await harness({ env, control: { me: 'local.test\n', rcpthosts: 'local.test\n' }, limits: { tarpitAfter: 100 } });
    try {
      const rcpts = cases.map(([a]) => `RCPT TO:<${a}>\r\n`).join('');
      const out = await talk(h.port, `HELO c\r\nMAIL FROM:<a@b.test>\r\n${rcpts}DATA\r\nhi\r\n.\r\nQUIT\r\n`);
      const codes = out.split('\r\n').slice(3, 3 + cases.length).map((l) => Number(l.slice(0, 3)));
      assert.deepEqual(codes, cases.map((c) => c[col]), `${mode}: ${out}`);
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

void test('issue 12: strict envelope syntax by default (what is wrong, said); QUAIL_LOOSE="1" in tcp.smtp gives qmail\'s 250s back', async () => {
  // [command, strict reply after EHLO]; with QUAIL_LOOSE every one of them is 250, as qmail-smtpd answers.
  const cases: Array<[string, RegExp]> = [
    ['MAIL FROM:<a@b.test> X-EVIL=1', /^555 5\.5\.4 MAIL FROM parameter X-EVIL is not supported; this server knows SIZE, BODY, SMTPUTF8 and AUTH \(#5\.5\.4\)$/],
    ['MAIL FROM:<a@b.test> BODY=EVIL', /^501 5\.5\.4 BODY=EVIL is not supported: write BODY=7BIT or BODY=8BITMIME \(#5\.5\.4\)$/],
    ['MAIL FROM:<a@b.test> SIZE=-1', /^501 5\.5\.4 SIZE=-1 is not a size: write SIZE=<number of bytes> \(#5\.5\.4\)$/],
    ['MAIL FROM:<a@b.test> SIZE=abc', /^501 5\.5\.4 SIZE=abc is not a size/],
    ['MAIL FROM:<a@b.test> SIZE=18446744073709551617', /^552 5\.3\.4 sorry, that message size exceeds my databytes limit \(#5\.3\.4\)$/],
    ['MAIL FROM:a@b.test', /^501 5\.1\.7 bad sender address syntax: the address must be enclosed in <>; write MAIL FROM:<user@domain> or MAIL FROM:<> \(#5\.1\.7\)$/],
    ['MAIL FROM:<a@b.test>', /^250 2\.1\.0 ok$/],
    ['MAIL FROM:<c@d.test>', /^503 5\.5\.1 a mail transaction is already open: finish it with DATA or send RSET first \(#5\.5\.1\)$/],
    ['RCPT TO:<>', /^501 5\.1\.3 bad recipient address syntax: the recipient address is empty; write RCPT TO:<user@domain> \(#5\.1\.3\)$/],
    ['RCPT TO:<alice@local.test', /^501 5\.1\.3 bad recipient address syntax: the address has no closing ">"; /],
    ['RCPT TO:<@local.test>', /^501 5\.1\.3 bad recipient address syntax: a source route \(@host,\.\.\.:\) without the mailbox/],
    ['RCPT TO:<alice@local.test> garbage', /^555 5\.5\.4 RCPT TO parameter GARBAGE is not supported; this server takes none \(#5\.5\.4\)$/],
    ['RCPT TO:<alice>', /^501 5\.1\.3 bad recipient address syntax: the address has no @domain; /],
  ];
  const script = `EHLO c\r\n${cases.map(([c]) => `${c}\r\n`).join('')}QUIT\r\n`;
  const strict = await harness({ limits: { tarpitAfter: 100 }, control: { 'tcp.smtp': '127.0.0.2:allow,QUAIL_LOOSE="1"\n:allow\n', databytes: '0\n' } });
  try {
    const lines = (await talk(strict.port, script)).split('\r\n');
    const replies = lines.slice(lines.findIndex((l) => l.startsWith('250 ')) + 1);
    cases.forEach(([cmd, want], i) => assert.match(replies[i] ?? '', want, cmd));
    assert.equal(strict.queued.length, 0);
  } finally {
    await strict.close();
  }
  const loose = await harness({ control: { 'tcp.smtp': '127.:allow,QUAIL_LOOSE="1"\n', databytes: '0\n' } });
  try {
    const out = await talk(loose.port, script.replace('EHLO', 'HELO'));
    assert.deepEqual(out.split('\r\n').slice(2, 2 + cases.length).map((l) => l.slice(0, 3)), Array<string>(cases.length).fill('250'), out);
  } finally {
    await loose.close();
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
  const h = await harness({ env: REMOTE, options: { maxrcpt: '2' }, limits: { maxErrors: 4, tarpitAfter: 100 }, control: { databytes: '100\n' } });
  try {
    const out = await talk(h.port, 'HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<a@local.test>\r\nRCPT TO:<b@local.test>\r\nRCPT TO:<c@local.test>\r\nQUIT\r\n');
    assert.match(out, /250 ok\r\n250 ok\r\n452 too many recipients/);
    const errs = await talk(h.port, 'HELO c\r\nX1\r\nX2\r\nX3\r\nX4\r\nX5\r\nQUIT\r\n');
    assert.match(errs, /502 unimplemented \(#5\.5\.1\)\r\n421 too many errors, closing the connection \(#4\.7\.0\)\r\n$/);
    assert.match(await talk(h.port, `HELO ${'x'.repeat(5000)}\r\nQUIT\r\n`), /^220 [^\r]*\r\n500 line too long \(#5\.5\.2\)\r\n221 /);
    assert.match(await talk(h.port, 'EHLO c\r\nMAIL FROM:<a@b.test> SIZE=101\r\nQUIT\r\n'), /552 5\.3\.4 sorry, that message size exceeds my databytes limit/);
    assert.match(await talk(h.port, 'HELO c\r\nRSET\rNOOP\r\nQUIT\r\n'), /501 syntax error: bare CR or NUL in a command line/);
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
  } finally {
    await one.close();
  }
});

void test('issue 12: without control/databytes a message over 35 MiB is refused (SIZE= at MAIL, or after DATA); databytes 0 is no limit', async () => {
  const LIMIT = 35 * 1024 * 1024;
  const h = await harness({ env: REMOTE });
  try {
    assert.match(await talk(h.port, 'EHLO c\r\nQUIT\r\n'), new RegExp(`\r\n250-SIZE ${LIMIT}\r\n`));
    assert.match(await talk(h.port, `EHLO c\r\nMAIL FROM:<a@b.test> SIZE=${LIMIT + 1}\r\nQUIT\r\n`), /\r\n552 5\.3\.4 sorry, that message size exceeds my databytes limit/);
    const body = Buffer.alloc(LIMIT + 100_000, 'x'); // CRLF counts as one byte (LF) once decoded
    for (let i = 998; i < body.length; i += 1000) body.write('\r\n', i - 1, 'latin1');
    const out = await talk(h.port, Buffer.concat([Buffer.from(head.replace('hello', '')), body, Buffer.from('\r\n.\r\nQUIT\r\n')]));
    assert.match(out, /354 go ahead\r\n552 5\.3\.4 sorry, that message size exceeds my databytes limit \(#5\.3\.4\)\r\n221 /);
    assert.equal(h.queued.length, 0);
  } finally {
    await h.close();
  }
  const unlimited = await harness({ env: REMOTE, control: { databytes: '0\n' } });
  try {
    const out = await talk(unlimited.port, `EHLO c\r\nMAIL FROM:<a@b.test> SIZE=${LIMIT + 1}\r\nQUIT\r\n`);
    assert.match(out, /\r\n250-SIZE\r\n/);
    assert.match(out, /\r\n250 2\.1\.0 ok\r\n/);
  } finally {
    await unlimited.close();
  }
});

void test('issue 12: more than 20 commands in a row that send no mail (NOOP flood, unknown verbs) end the session with 421', async () => {
  const h = await harness({ env: REMOTE, limits: { tarpitAfter: 100 } });
  const flood = (verbs: readonly string[], n: number): string => Array.from({ length: n }, (_, i) => `${verbs[i % verbs.length] ?? 'NOOP'}\r\n`).join('');
  const NO_PROGRESS = '421 4.7.0 too many commands without sending mail, closing the connection (#4.7.0)\r\n';
  try {
    // EHLO counts too: EHLO + 19 = 20 is allowed, the 21st is refused and nothing after it is read
    const twenty = await talk(h.port, `EHLO c\r\n${flood(['NOOP', 'RSET', 'VRFY x', 'HELP'], 19)}QUIT\r\n`);
    assert.match(twenty, /\r\n221 mx\.local\.test\r\n$/);
    const out = await talk(h.port, `EHLO c\r\n${flood(['NOOP', 'RSET', 'VRFY x', 'HELP'], 20)}NOOP\r\nQUIT\r\n`);
    assert.ok(out.endsWith(`\r\n${NO_PROGRESS}`), out);
    assert.equal(out.split('\r\n').length - 1, 1 + 6 + 19 + 1, 'greeting, EHLO (6 lines), 19 replies, the 421');
    // a transaction that moves resets the count; unknown and refused commands count
    const moving = await talk(h.port, `EHLO c\r\n${flood(['NOOP'], 15)}MAIL FROM:<a@b.test>\r\n${flood(['NOOP'], 15)}RCPT TO:<joe@local.test>\r\n${flood(['RSET'], 15)}QUIT\r\n`);
    assert.match(moving, /\r\n221 mx\.local\.test\r\n$/);
    const unknown = await talk(h.port, `EHLO c\r\n${flood(['XYZZY', 'RCPT TO:<joe@local.test>'], 21)}QUIT\r\n`);
    assert.ok(unknown.endsWith(`\r\n502 5.5.1 unimplemented (#5.5.1)\r\n${NO_PROGRESS}`), unknown);
  } finally {
    await h.close();
  }
  const opt = await harness({ env: REMOTE, options: { maxnoop: '3' } });
  try {
    assert.match(await talk(opt.port, 'HELO c\r\nNOOP\r\nNOOP\r\nNOOP\r\nQUIT\r\n'), /250 ok\r\n250 ok\r\n421 too many commands without sending mail/);
  } finally {
    await opt.close();
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
    assert.match(await talk(none.port, 'EHLO c\r\nAUTH PLAIN AHUAcA==\r\nQUIT\r\n'), /250 AUTH PLAIN LOGIN\r\n454 4\.7\.0 temporary authentication failure/);
  } finally {
    await none.close();
  }
  const dir = await harness({
    kind: 'submission',
    control: CLEAR,
    authenticator: { verify: (u, p) => Promise.resolve(u === 'u' && p === 'p' ? { ok: true, user: 'u@local.test' } : { ok: false, temporary: false, reason: 'bad' }) },
  });
  try {
    const bad = await talk(dir.port, 'EHLO c\r\nAUTH LOGIN\r\ndQ==\r\neA==\r\nQUIT\r\n');
    assert.match(bad, /334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n535 5\.7\.8 authentication failed/);
    const good = await talk(dir.port, 'EHLO c\r\nAUTH PLAIN AHUAcA==\r\nMAIL FROM:<u@local.test>\r\nRCPT TO:<x@remote.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n');
    assert.match(good, /235 2\.7\.0 authentication successful/);
    assert.deepEqual(dir.queued[0]?.recipients, ['x@remote.test']);
    assert.match(dir.queued[0]?.data ?? '', /by mx\.local\.test with ESMTPA; /);
  } finally {
    await dir.close();
  }
});

void test('bare CR: refused by default; kept per client with QUAIL_BARECR="keep" in tcp.smtp; never smuggles', async () => {
  const msg = 'HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@local.test>\r\nDATA\r\nline with\rCR inside\r\n.\r\nQUIT\r\n';
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
    assert.match(await talk(keep.port, `${head}\n.\n${smuggled}\r\n.\r\n`), /451 4\.6\.0 See https:\/\/cr\.yp\.to\/docs\/smtplf\.html\./);
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
    authenticator: { verify: (u, p) => Promise.resolve(p === 'p' ? { ok: true, user: u } : { ok: false, temporary: false, reason: 'bad' }) },
  });
  try {
    const out = await talk(h.port, 'EHLO c\r\nAUTH PLAIN AGpvZUBleGFtcGxlLm9yZwBw\r\nMAIL FROM:<joe@example.org>\r\nRCPT TO:<nobody@local.test>\r\nRCPT TO:<x@down.test>\r\nRCPT TO:<joe@local.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n');
    assert.match(out, /235 2\.7\.0 [^\n]*\n250 2\.1\.0 ok\r\n550 5\.1\.1 sorry, no mailbox here by that name \(#5\.1\.1\)\r\n451 4\.3\.0 temporary failure looking up the mailbox, try again later \(#4\.3\.0\)\r\n250 2\.1\.5 ok\r\n/);
    // checked before RELAYCLIENT's suffix is appended; only the accepted one is queued (with the suffix)
    assert.deepEqual(seen, ['nobody@local.test', 'x@down.test', 'joe@local.test']);
    assert.deepEqual(h.queued[0]?.recipients, ['joe@local.test@gw.test']);
    assert.equal(h.queued[0]?.meta['auth'], 'joe@example.org');
    assert.match(h.queued[0]?.data ?? '', /^Received: from unknown \(HELO c\) \(joe@example\.org@127\.0\.0\.1\)\n {2}by mx\.local\.test with ESMTPA; /);
  } finally {
    await h.close();
  }
});

void test('AUTH: a login the directory flags no-relay is authenticated but may not relay; others may', async () => {
  const h = await harness({
    control: { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' },
    authenticator: { verify: (u, p) => Promise.resolve(p === 'n' ? { ok: true, user: u, relay: false } : { ok: true, user: u }) },
  });
  try {
    const plain = (pw: string): string => Buffer.from(`\0u@x.test\0${pw}`).toString('base64');
    const session = (pw: string): string => `EHLO c\r\nAUTH PLAIN ${plain(pw)}\r\nMAIL FROM:<u@x.test>\r\nRCPT TO:<far@remote.test>\r\nRCPT TO:<joe@local.test>\r\nQUIT\r\n`;
    assert.match(await talk(h.port, session('n')), /235 2\.7\.0 [^\n]*\n250 2\.1\.0 ok\r\n553 5\.7\.1 sorry, that domain isn't in my list of allowed rcpthosts \(#5\.7\.1\)\r\n250 2\.1\.5 ok\r\n/);
    assert.match(await talk(h.port, session('y')), /235 2\.7\.0 [^\n]*\n250 2\.1\.0 ok\r\n250 2\.1\.5 ok\r\n250 2\.1\.5 ok\r\n/);
  } finally {
    await h.close();
  }
});

const plainAuth = (user: string, pw: string): string => Buffer.from(`\0${user}\0${pw}`).toString('base64');
const TABLE: Authenticator = {
  verify: (u, p) => Promise.resolve(u === 'joe@example.org' && p === 'pw' ? { ok: true, user: u } : { ok: false, temporary: false, reason: 'bad' }),
};

void test('issue 12: no AUTH in clear text, loopback included, unless tcp.smtp says QUAIL_CLEARAUTH="1" for the client', async () => {
  const session = `EHLO c\r\nAUTH PLAIN ${plainAuth('joe@example.org', 'pw')}\r\nQUIT\r\n`;
  // STARTTLS available (servercert.pem): AUTH waits for it
  const tls = await harness({ tls: true, authenticator: TABLE });
  try {
    const out = await talk(tls.port, session);
    assert.match(out, /250[- ]STARTTLS\r\n/);
    assert.doesNotMatch(out, /AUTH PLAIN LOGIN/);
    assert.match(out, /\r\n538 5\.7\.11 encryption required for authentication, use STARTTLS first \(#5\.7\.11\)\r\n/);
  } finally {
    await tls.close();
  }
  // no certificate at all: still no clear text, and the client is told there is no STARTTLS here
  const bare = await harness({ authenticator: TABLE, control: { 'tcp.smtp': '127.0.0.2:allow,QUAIL_CLEARAUTH="1"\n:allow\n' } });
  try {
    const out = await talk(bare.port, session);
    assert.doesNotMatch(out, /250[- ](AUTH|STARTTLS)/);
    assert.match(out, /\r\n538 5\.7\.11 encryption required for authentication, and this server offers no STARTTLS: ask its administrator \(#5\.7\.11\)\r\n/);
  } finally {
    await bare.close();
  }
  // the per-client opt-out
  const allowed = await harness({ tls: true, authenticator: TABLE, control: { 'tcp.smtp': '127.0.0.1:allow,QUAIL_CLEARAUTH="1"\n' } });
  try {
    const out = await talk(allowed.port, session);
    assert.match(out, /250 AUTH PLAIN LOGIN\r\n/);
    assert.match(out, /\r\n235 2\.7\.0 authentication successful\r\n/);
  } finally {
    await allowed.close();
  }
});

void test('issue 12: failed AUTH is throttled per client address (as POP3 logins), and three failures close the session', async () => {
  const h = await harness({ authenticator: TABLE, throttle: { baseMs: 300, maxMs: 2000 }, control: { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' } });
  try {
    const timed = async (user: string, pw: string): Promise<[string, number]> => {
      const t0 = Date.now();
      const out = await talk(h.port, `EHLO c\r\nAUTH PLAIN ${plainAuth(user, pw)}\r\nQUIT\r\n`);
      return [out, Date.now() - t0];
    };
    const [first, t1] = await timed('joe@example.org', 'wrong');
    assert.match(first, /535 5\.7\.8 authentication failed/);
    assert.ok(t1 < 300, `the first failure is answered at once (${t1} ms)`);
    // another login from the same address waits: the address has failed once
    const [second, t2] = await timed('ann@example.org', 'wrong');
    assert.match(second, /535 5\.7\.8 authentication failed/);
    assert.ok(t2 >= 280, `the second attempt from the address waits (${t2} ms)`);
  } finally {
    await h.close();
  }
  const quick = await harness({ authenticator: TABLE, control: { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' } });
  try {
    // three failures in one session: 421 and the connection is closed (nothing after it is read)
    const three = await talk(quick.port, `EHLO c\r\n${`AUTH PLAIN ${plainAuth('x@y.test', 'z')}\r\n`.repeat(3)}NOOP\r\n`);
    assert.match(three, /535 5\.7\.8 [^\n]*\n535 5\.7\.8 [^\n]*\n421 4\.7\.0 too many failed authentication attempts, closing the connection; try again later \(#4\.7\.0\)\r\n$/);
  } finally {
    await quick.close();
  }
});

void test('issue 12: a throttle passed to several listeners is shared (quail start passes one to all its SMTP listeners)', async () => {
  const throttle = new LoginThrottle({ baseMs: 300, maxMs: 2000 });
  const CLEAR = { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' };
  const a = await harness({ authenticator: TABLE, sharedThrottle: throttle, control: CLEAR });
  const b = await harness({ authenticator: TABLE, sharedThrottle: throttle, control: CLEAR, kind: 'submission' });
  try {
    const attempt = `EHLO c\r\nAUTH PLAIN ${plainAuth('joe@example.org', 'wrong')}\r\nQUIT\r\n`;
    assert.match(await talk(a.port, attempt), /535 5\.7\.8/);
    const t0 = Date.now();
    assert.match(await talk(b.port, attempt), /535 5\.7\.8/);
    assert.ok(Date.now() - t0 >= 280, 'the failure on the first port slows the second');
  } finally {
    await a.close();
    await b.close();
  }
});

void test('issue 12: control/defaultdomain (vpopmail\'s meaning): an AUTH login without @domain is user@defaultdomain', async () => {
  const seen: string[] = [];
  const authenticator: Authenticator = {
    verify: (u, p) => {
      seen.push(u);
      return TABLE.verify(u, p, { ip: '' });
    },
  };
  const CLEAR = { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' };
  const dd = await harness({ authenticator, control: { ...CLEAR, defaultdomain: 'Example.ORG\n' } });
  try {
    assert.match(await talk(dd.port, `EHLO c\r\nAUTH PLAIN ${plainAuth('joe', 'pw')}\r\nQUIT\r\n`), /235 2\.7\.0 authentication successful/);
    assert.match(await talk(dd.port, `EHLO c\r\nAUTH PLAIN ${plainAuth('joe%example.org', 'x')}\r\nQUIT\r\n`), /535 /);
    assert.deepEqual(seen, ['joe@example.org', 'joe%example.org']);
  } finally {
    await dd.close();
  }
  seen.length = 0;
  // without the file nothing is added (not even control/me, which is qmail-inject's default for it)
  const none = await harness({ authenticator, control: { ...CLEAR, me: 'example.org\n' } });
  try {
    assert.match(await talk(none.port, `EHLO c\r\nAUTH PLAIN ${plainAuth('joe', 'pw')}\r\nQUIT\r\n`), /535 5\.7\.8/);
    assert.deepEqual(seen, ['joe']);
  } finally {
    await none.close();
  }
});

void test('issue 12: after AUTH the envelope sender must be the login\'s (553 5.7.1 names the login); senderauth=off switches it off', async () => {
  const CLEAR = { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' };
  const auth = `EHLO c\r\nAUTH PLAIN ${plainAuth('joe@example.org', 'pw')}\r\n`;
  const mailFrom = (from: string): string => `${auth}MAIL FROM:<${from}>\r\nRCPT TO:<x@local.test>\r\nQUIT\r\n`;
  for (const kind of ['smtp', 'submission'] as const) {
    const h = await harness({ kind, authenticator: TABLE, control: CLEAR });
    try {
      assert.match(await talk(h.port, mailFrom('JOE@example.org')), /235 2\.7\.0 [^\n]*\n250 2\.1\.0 ok\r\n250 2\.1\.5 ok\r\n/, kind);
      assert.match(await talk(h.port, mailFrom('ceo@example.org')),
        /235 2\.7\.0 [^\n]*\n553 5\.7\.1 sorry, joe@example\.org may not send as <ceo@example\.org>: use your own address or one of its aliases \(#5\.7\.1\)\r\n503 5\.5\.1 MAIL first/, kind);
      assert.match(await talk(h.port, mailFrom('')), /\n553 5\.7\.1 sorry, joe@example\.org may not send as <>: /, kind);
      // without AUTH nothing is checked (an smtp listener takes mail from anyone for its domains)
      if (kind === 'smtp') assert.match(await talk(h.port, 'EHLO c\r\nMAIL FROM:<ceo@example.org>\r\nQUIT\r\n'), /\n250 2\.1\.0 ok\r\n/);
    } finally {
      await h.close();
    }
  }
  const off = await harness({ kind: 'submission', options: { senderauth: 'off' }, authenticator: TABLE, control: CLEAR });
  try {
    assert.match(await talk(off.port, mailFrom('ceo@example.org')), /235 2\.7\.0 [^\n]*\n250 2\.1\.0 ok\r\n250 2\.1\.5 ok\r\n/);
  } finally {
    await off.close();
  }
  // an injected rule (the directory's) decides; its trouble is a 451, never a pass
  const seen: string[] = [];
  const ruled = await harness({
    authenticator: TABLE, control: CLEAR,
    senders: {
      mayUse: (login, sender) => {
        seen.push(`${login} ${sender}`);
        return sender === 'sales@example.org' ? Promise.resolve('allow') : sender === 'x@down.test' ? Promise.reject(new Error('db down')) : Promise.resolve('deny');
      },
    },
  });
  try {
    assert.match(await talk(ruled.port, mailFrom('sales@example.org')), /\n250 2\.1\.0 ok\r\n/);
    assert.match(await talk(ruled.port, mailFrom('x@down.test')), /\n451 4\.3\.0 temporary failure checking the sender against your login, try again later \(#4\.3\.0\)\r\n/);
    assert.deepEqual(seen, ['joe@example.org sales@example.org', 'joe@example.org x@down.test']);
  } finally {
    await ruled.close();
  }
});
