// Black-box tests of issue 12's strict defaults on the SMTP listener: envelope syntax and QUAIL_LOOSE, databytes,
// the no-progress limit, AUTH over TLS only and its throttle, defaultdomain, the sender rule after AUTH.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoginThrottle } from '../throttle/index.js';
import type { Authenticator } from './auth.js';
import { harness, talk } from '../../test/support/smtpd.js';

const REMOTE = { TCPREMOTEIP: '192.0.2.9', TCPLOCALHOST: 'mx.local.test' };
const head = 'EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@local.test>\r\nDATA\r\nSubject: s\r\n\r\nhello';
const plainAuth = (user: string, pw: string): string => Buffer.from(`\0${user}\0${pw}`).toString('base64');
const TABLE: Authenticator = {
  verify: (u, p) =>
    Promise.resolve(
      u === 'joe@example.org' && p === 'pw' ? { ok: true, user: u } : { ok: false, temporary: false, reason: 'bad' },
    ),
};

void test('issue 12: strict envelope syntax by default (what is wrong, said); QUAIL_LOOSE="1" in tcp.smtp gives qmail\'s 250s back', async () => {
  // [command, strict reply after EHLO]; with QUAIL_LOOSE every one of them is 250, as qmail-smtpd answers.
  const cases: Array<[string, RegExp]> = [
    [
      'MAIL FROM:<a@b.test> X-EVIL=1',
      /^555 5\.5\.4 MAIL FROM parameter X-EVIL is not supported; this server knows SIZE, BODY, SMTPUTF8 and AUTH \(#5\.5\.4\)$/,
    ],
    [
      'MAIL FROM:<a@b.test> BODY=EVIL',
      /^501 5\.5\.4 BODY=EVIL is not supported: write BODY=7BIT or BODY=8BITMIME \(#5\.5\.4\)$/,
    ],
    ['MAIL FROM:<a@b.test> SIZE=-1', /^501 5\.5\.4 SIZE=-1 is not a size: write SIZE=<number of bytes> \(#5\.5\.4\)$/],
    ['MAIL FROM:<a@b.test> SIZE=abc', /^501 5\.5\.4 SIZE=abc is not a size/],
    [
      'MAIL FROM:<a@b.test> SIZE=18446744073709551617',
      /^552 5\.3\.4 sorry, that message size exceeds my databytes limit \(#5\.3\.4\)$/,
    ],
    [
      'MAIL FROM:a@b.test',
      /^501 5\.1\.7 bad sender address syntax: the address must be enclosed in <>; write MAIL FROM:<user@domain> or MAIL FROM:<> \(#5\.1\.7\)$/,
    ],
    ['MAIL FROM:<a@b.test>', /^250 2\.1\.0 ok$/],
    [
      'MAIL FROM:<c@d.test>',
      /^503 5\.5\.1 a mail transaction is already open: finish it with DATA or send RSET first \(#5\.5\.1\)$/,
    ],
    [
      'RCPT TO:<>',
      /^501 5\.1\.3 bad recipient address syntax: the recipient address is empty; write RCPT TO:<user@domain> \(#5\.1\.3\)$/,
    ],
    ['RCPT TO:<alice@local.test', /^501 5\.1\.3 bad recipient address syntax: the address has no closing ">"; /],
    [
      'RCPT TO:<@local.test>',
      /^501 5\.1\.3 bad recipient address syntax: a source route \(@host,\.\.\.:\) without the mailbox/,
    ],
    [
      'RCPT TO:<alice@local.test> garbage',
      /^555 5\.5\.4 RCPT TO parameter GARBAGE is not supported; this server takes none \(#5\.5\.4\)$/,
    ],
    ['RCPT TO:<alice>', /^501 5\.1\.3 bad recipient address syntax: the address has no @domain; /],
  ];
  const script = `EHLO c\r\n${cases.map(([c]) => `${c}\r\n`).join('')}QUIT\r\n`;
  const strict = await harness({
    limits: { tarpitAfter: 100 },
    control: { 'tcp.smtp': '127.0.0.2:allow,QUAIL_LOOSE="1"\n:allow\n', databytes: '0\n' },
  });
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
    assert.deepEqual(
      out
        .split('\r\n')
        .slice(2, 2 + cases.length)
        .map((l) => l.slice(0, 3)),
      Array<string>(cases.length).fill('250'),
      out,
    );
  } finally {
    await loose.close();
  }
});

void test('issue 12: without control/databytes a message over 35 MiB is refused (SIZE= at MAIL, or after DATA); databytes 0 is no limit', async () => {
  const LIMIT = 35 * 1024 * 1024;
  const h = await harness({ env: REMOTE });
  try {
    assert.match(await talk(h.port, 'EHLO c\r\nQUIT\r\n'), new RegExp(`\r\n250-SIZE ${LIMIT}\r\n`));
    assert.match(
      await talk(h.port, `EHLO c\r\nMAIL FROM:<a@b.test> SIZE=${LIMIT + 1}\r\nQUIT\r\n`),
      /\r\n552 5\.3\.4 sorry, that message size exceeds my databytes limit/,
    );
    const body = Buffer.alloc(LIMIT + 100_000, 'x'); // CRLF counts as one byte (LF) once decoded
    for (let i = 998; i < body.length; i += 1000) body.write('\r\n', i - 1, 'latin1');
    const out = await talk(
      h.port,
      Buffer.concat([Buffer.from(head.replace('hello', '')), body, Buffer.from('\r\n.\r\nQUIT\r\n')]),
    );
    assert.match(
      out,
      /354 go ahead\r\n552 5\.3\.4 sorry, that message size exceeds my databytes limit \(#5\.3\.4\)\r\n221 /,
    );
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
  const flood = (verbs: readonly string[], n: number): string =>
    Array.from({ length: n }, (_, i) => `${verbs[i % verbs.length] ?? 'NOOP'}\r\n`).join('');
  const NO_PROGRESS = '421 4.7.0 too many commands without sending mail, closing the connection (#4.7.0)\r\n';
  try {
    // EHLO counts too: EHLO + 19 = 20 is allowed, the 21st is refused and nothing after it is read
    const twenty = await talk(h.port, `EHLO c\r\n${flood(['NOOP', 'RSET', 'VRFY x', 'HELP'], 19)}QUIT\r\n`);
    assert.match(twenty, /\r\n221 mx\.local\.test\r\n$/);
    const out = await talk(h.port, `EHLO c\r\n${flood(['NOOP', 'RSET', 'VRFY x', 'HELP'], 20)}NOOP\r\nQUIT\r\n`);
    assert.ok(out.endsWith(`\r\n${NO_PROGRESS}`), out);
    assert.equal(out.split('\r\n').length - 1, 1 + 6 + 19 + 1, 'greeting, EHLO (6 lines), 19 replies, the 421');
    // a transaction that moves resets the count; unknown and refused commands count
    const moving = await talk(
      h.port,
      `EHLO c\r\n${flood(['NOOP'], 15)}MAIL FROM:<a@b.test>\r\n${flood(['NOOP'], 15)}RCPT TO:<joe@local.test>\r\n${flood(['RSET'], 15)}QUIT\r\n`,
    );
    assert.match(moving, /\r\n221 mx\.local\.test\r\n$/);
    const unknown = await talk(h.port, `EHLO c\r\n${flood(['XYZZY', 'RCPT TO:<joe@local.test>'], 21)}QUIT\r\n`);
    assert.ok(unknown.endsWith(`\r\n502 5.5.1 unimplemented (#5.5.1)\r\n${NO_PROGRESS}`), unknown);
  } finally {
    await h.close();
  }
  const opt = await harness({ env: REMOTE, options: { maxnoop: '3' } });
  try {
    assert.match(
      await talk(opt.port, 'HELO c\r\nNOOP\r\nNOOP\r\nNOOP\r\nQUIT\r\n'),
      /250 ok\r\n250 ok\r\n421 too many commands without sending mail/,
    );
  } finally {
    await opt.close();
  }
});

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
  const bare = await harness({
    authenticator: TABLE,
    control: { 'tcp.smtp': '127.0.0.2:allow,QUAIL_CLEARAUTH="1"\n:allow\n' },
  });
  try {
    const out = await talk(bare.port, session);
    assert.doesNotMatch(out, /250[- ](AUTH|STARTTLS)/);
    assert.match(
      out,
      /\r\n538 5\.7\.11 encryption required for authentication, and this server offers no STARTTLS: ask its administrator \(#5\.7\.11\)\r\n/,
    );
  } finally {
    await bare.close();
  }
  // the per-client opt-out
  const allowed = await harness({
    tls: true,
    authenticator: TABLE,
    control: { 'tcp.smtp': '127.0.0.1:allow,QUAIL_CLEARAUTH="1"\n' },
  });
  try {
    const out = await talk(allowed.port, session);
    assert.match(out, /250 AUTH PLAIN LOGIN\r\n/);
    assert.match(out, /\r\n235 2\.7\.0 authentication successful\r\n/);
  } finally {
    await allowed.close();
  }
});

void test('issue 12: failed AUTH is throttled per client address (as POP3 logins), and three failures close the session', async () => {
  const h = await harness({
    authenticator: TABLE,
    throttle: { baseMs: 300, maxMs: 2000 },
    control: { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' },
  });
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
    const three = await talk(
      quick.port,
      `EHLO c\r\n${`AUTH PLAIN ${plainAuth('x@y.test', 'z')}\r\n`.repeat(3)}NOOP\r\n`,
    );
    assert.match(
      three,
      /535 5\.7\.8 [^\n]*\n535 5\.7\.8 [^\n]*\n421 4\.7\.0 too many failed authentication attempts, closing the connection; try again later \(#4\.7\.0\)\r\n$/,
    );
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

void test('AUTH: the slowdown per login counts every spelling of one mailbox (case, user%domain) as one', async () => {
  const throttle = new LoginThrottle({ baseMs: 300, maxMs: 5000 });
  const h = await harness({
    authenticator: TABLE,
    sharedThrottle: throttle,
    control: { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' },
  });
  try {
    // joe@example.org failed twice from elsewhere: 600 ms for its next attempt, from any address
    throttle.failed('198.51.100.1', 'joe@example.org');
    throttle.failed('198.51.100.1', 'joe@example.org');
    const t0 = Date.now();
    const out = await talk(h.port, `EHLO c\r\nAUTH PLAIN ${plainAuth('JOE%Example.ORG', 'wrong')}\r\nQUIT\r\n`);
    assert.match(out, /535 5\.7\.8 authentication failed/);
    const waited = Date.now() - t0;
    assert.ok(waited >= 580, `JOE%Example.ORG waits as joe@example.org does (${waited} ms)`);
    for (const spelling of ['joe@EXAMPLE.ORG', 'Joe%example.org'])
      assert.match(
        await talk(h.port, `EHLO c\r\nAUTH PLAIN ${plainAuth(spelling, 'wrong')}\r\nQUIT\r\n`),
        /535 5\.7\.8/,
      );
    // five failures under four spellings, all counted for the one mailbox: 300 ms · 2^4
    assert.equal(throttle.delayFor('203.0.113.9', 'joe@example.org'), 4800);
  } finally {
    await h.close();
  }
});

void test("issue 12: control/defaultdomain (vpopmail's meaning): an AUTH login without @domain is user@defaultdomain", async () => {
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
    assert.match(
      await talk(dd.port, `EHLO c\r\nAUTH PLAIN ${plainAuth('joe', 'pw')}\r\nQUIT\r\n`),
      /235 2\.7\.0 authentication successful/,
    );
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

void test("issue 12: after AUTH the envelope sender must be the login's (553 5.7.1 names the login); senderauth=off switches it off", async () => {
  const CLEAR = { 'tcp.smtp': '127.:allow,QUAIL_CLEARAUTH="1"\n' };
  const auth = `EHLO c\r\nAUTH PLAIN ${plainAuth('joe@example.org', 'pw')}\r\n`;
  const mailFrom = (from: string): string => `${auth}MAIL FROM:<${from}>\r\nRCPT TO:<x@local.test>\r\nQUIT\r\n`;
  for (const kind of ['smtp', 'submission'] as const) {
    const h = await harness({ kind, authenticator: TABLE, control: CLEAR });
    try {
      assert.match(
        await talk(h.port, mailFrom('JOE@example.org')),
        /235 2\.7\.0 [^\n]*\n250 2\.1\.0 ok\r\n250 2\.1\.5 ok\r\n/,
        kind,
      );
      assert.match(
        await talk(h.port, mailFrom('ceo@example.org')),
        /235 2\.7\.0 [^\n]*\n553 5\.7\.1 sorry, joe@example\.org may not send as <ceo@example\.org>: use your own address or one of its aliases \(#5\.7\.1\)\r\n503 5\.5\.1 MAIL first/,
        kind,
      );
      assert.match(
        await talk(h.port, mailFrom('')),
        /\n553 5\.7\.1 sorry, joe@example\.org may not send as <>: /,
        kind,
      );
      // without AUTH nothing is checked (an smtp listener takes mail from anyone for its domains)
      if (kind === 'smtp')
        assert.match(await talk(h.port, 'EHLO c\r\nMAIL FROM:<ceo@example.org>\r\nQUIT\r\n'), /\n250 2\.1\.0 ok\r\n/);
    } finally {
      await h.close();
    }
  }
  const off = await harness({
    kind: 'submission',
    options: { senderauth: 'off' },
    authenticator: TABLE,
    control: CLEAR,
  });
  try {
    assert.match(
      await talk(off.port, mailFrom('ceo@example.org')),
      /235 2\.7\.0 [^\n]*\n250 2\.1\.0 ok\r\n250 2\.1\.5 ok\r\n/,
    );
  } finally {
    await off.close();
  }
  // an injected rule (the directory's) decides; its trouble is a 451, never a pass
  const seen: string[] = [];
  const ruled = await harness({
    authenticator: TABLE,
    control: CLEAR,
    senders: {
      mayUse: (login, sender) => {
        seen.push(`${login} ${sender}`);
        return sender === 'sales@example.org'
          ? Promise.resolve('allow')
          : sender === 'x@down.test'
            ? Promise.reject(new Error('db down'))
            : Promise.resolve('deny');
      },
    },
  });
  try {
    assert.match(await talk(ruled.port, mailFrom('sales@example.org')), /\n250 2\.1\.0 ok\r\n/);
    assert.match(
      await talk(ruled.port, mailFrom('x@down.test')),
      /\n451 4\.3\.0 temporary failure checking the sender against your login, try again later \(#4\.3\.0\)\r\n/,
    );
    assert.deepEqual(seen, ['joe@example.org sales@example.org', 'joe@example.org x@down.test']);
  } finally {
    await ruled.close();
  }
});
