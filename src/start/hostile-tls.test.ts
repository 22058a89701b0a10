// Issue 12, SMTP TLS and AUTH: garbage, half handshakes and disconnects after STARTTLS, forged records, the
// tier: system (needs quail start)
// STARTTLS command injection, TLS on the plain port; AUTH PLAIN and LOGIN (over STARTTLS) with every malformed
// response; random bytes (fast-check) in every state. After every case the same processes serve, a fresh
// session gets its banner and a normal message is delivered.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { BOX, finishBystander, Hostile, openBystander, PASSWORD } from '../../test/support/hostile.js';
import { serverEndsAfterForgedRecord } from '../../test/support/tls-forge.js';
import {
  assertNoLeak,
  assertSmtpLines,
  clientHello,
  dataVerdict,
  endsOnlyAtTheEnd,
  freshLoopback,
  plain,
  tlsGarbage,
  Wire,
} from '../../test/support/hostile-wire.js';

let h: Hostile;
let hello: Buffer;
/** A transaction over STARTTLS left in the middle of DATA while the cases run, finished at the end. */
let bystander: Wire;
before(async () => {
  h = await Hostile.start('hostile-tls');
  bystander = await openBystander(h, true);
  hello = await clientHello();
});
after(async () => {
  await h.stop();
});

const SMUGGLER = 'smuggler@evil.test';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** A connection after `EHLO` and `STARTTLS` → 220, before any TLS byte. */
async function afterStartTls(): Promise<Wire> {
  const w = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
  assert.equal(await w.code(), 220);
  w.send('EHLO client.test\r\nSTARTTLS\r\n');
  assert.equal(await w.code(), 250);
  assert.equal(await w.code(), 220);
  return w;
}

/** A TLS session after EHLO (the state AUTH is offered in). */
async function secured(): Promise<Wire> {
  const w = await afterStartTls();
  await w.upgrade();
  w.send('EHLO client.test\r\n');
  assert.equal(await w.code(), 250);
  return w;
}

/** The server must hang up on its own within 10 s (it may not wait for the 60 s handshake timeout or longer). */
async function serverCloses(w: Wire, what: string): Promise<void> {
  assert.ok(await w.closes(10_000), `${what}: the server kept the connection open`);
}

const TLS_CASES: ReadonlyArray<readonly [string, () => Promise<void>]> = [
  [
    'plain text after 220 ready',
    async () => {
      const w = await afterStartTls();
      w.send(`EHLO x\r\nMAIL FROM:<${SMUGGLER}>\r\nRCPT TO:<${BOX}>\r\n`);
      await serverCloses(w, 'plain text');
      assert.doesNotMatch(w.received, /^250 2\.1\.[05]/m);
    },
  ],
  [
    'random bytes after 220 ready',
    async () => {
      const w = await afterStartTls();
      w.send(tlsGarbage(4096));
      await serverCloses(w, 'random bytes');
    },
  ],
  ...(['fin', 'rst'] as const).flatMap((how) =>
    ([5, 40, 'half', 'all'] as const).map(
      (cut) =>
        [
          `ClientHello cut at ${cut}, then ${how}`,
          async () => {
            const w = await afterStartTls();
            const n = cut === 'half' ? Math.floor(hello.length / 2) : cut === 'all' ? hello.length : cut;
            await w.write(hello.subarray(0, n));
            if (how === 'rst') return void w.reset();
            w.end();
            await serverCloses(w, `ClientHello cut at ${cut}`);
          },
        ] as const,
    ),
  ),
  [
    'a whole ClientHello, then garbage',
    async () => {
      const w = await afterStartTls();
      await w.write(hello);
      w.send(tlsGarbage(2048));
      await serverCloses(w, 'ClientHello then garbage');
    },
  ],
  [
    'a TLS alert instead of a ClientHello',
    async () => {
      const w = await afterStartTls();
      w.send(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]));
      await serverCloses(w, 'alert');
    },
  ],
  [
    'an SSLv2-style hello',
    async () => {
      const w = await afterStartTls();
      w.send(
        Buffer.concat([
          Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]),
          randomBytes(37),
        ]),
      );
      await serverCloses(w, 'SSLv2 hello');
    },
  ],
  [
    'a record header announcing 64 KB, then FIN',
    async () => {
      const w = await afterStartTls();
      await w.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), randomBytes(1000)]));
      w.end();
      await serverCloses(w, 'oversized record');
    },
  ],
  [
    'only TLS 1.0/1.1 offered',
    async () => {
      const w = await afterStartTls();
      await assert.rejects(w.upgrade({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }));
      w.destroy();
    },
  ],
  [
    'STARTTLS command injection (pipelined MAIL is dropped)',
    async () => {
      const w = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
      assert.equal(await w.code(), 220);
      w.send(`EHLO client.test\r\nSTARTTLS\r\nMAIL FROM:<${SMUGGLER}>\r\n`);
      assert.equal(await w.code(), 250);
      assert.equal(await w.code(), 220);
      try {
        await w.upgrade();
      } catch {
        return void (await serverCloses(w, 'injection'));
      }
      w.send(`EHLO client.test\r\nRCPT TO:<${BOX}>\r\nQUIT\r\n`);
      assert.equal(await w.code(), 250);
      const rcpt = await w.code();
      assert.ok(rcpt >= 500, `RCPT after TLS used a MAIL sent before it: ${rcpt}`);
      h.expectQueued(SMUGGLER, 0, 'STARTTLS injection');
    },
  ],
  [
    'a forged application-data record after the handshake',
    async () => {
      // the TLS client's bytes pass through the test, so the client cannot be the side that hangs up on the alert
      assert.ok(
        await serverEndsAfterForgedRecord(h.ports.smtp, 10_000),
        'forged record: the server kept the connection open',
      );
    },
  ],
  [
    'TCP FIN without close_notify in mid-DATA',
    async () => {
      const from = `t${Date.now()}@client.test`;
      const w = await secured();
      w.send(`MAIL FROM:<${from}>\r\nRCPT TO:<${BOX}>\r\nDATA\r\n`);
      assert.deepEqual([await w.code(), await w.code(), await w.code()], [250, 250, 354]);
      await w.write('Subject: cut\r\n\r\nhalf a mess');
      w.rawEnd();
      await serverCloses(w, 'FIN under TLS');
      h.expectQueued(from, 0, 'FIN under TLS in mid-DATA');
    },
  ],
  [
    'RST under TLS in mid-command',
    async () => {
      const w = await secured();
      await w.write('MAIL FROM:<half@cli');
      w.reset();
    },
  ],
  [
    'a ClientHello on the plain port, before the banner',
    async () => {
      const w = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
      await w.write(hello);
      await new Promise((r) => setTimeout(r, 100));
      w.end();
      await serverCloses(w, 'ClientHello on the plain port');
      assertSmtpLines(w.received, 'ClientHello on the plain port');
    },
  ],
];

void test('STARTTLS: garbage, half handshakes, FIN and RST, forged records, old versions, command injection, TLS on the plain port', () =>
  h.guard(async () => {
    for (const [what, run] of TLS_CASES) {
      await run();
      await h.health(`TLS: ${what}`);
    }
  }));

/** `auth`: whether 235 is allowed (true), required (true and `must`), or forbidden (false); undefined = policy. */
const AUTH_CASES: ReadonlyArray<readonly [string, readonly string[], boolean | undefined]> = [
  ['PLAIN, initial response', [`AUTH PLAIN ${plain(BOX, PASSWORD)}`], true],
  ['PLAIN, continued', ['AUTH PLAIN', plain(BOX, PASSWORD)], true],
  ['LOGIN', ['AUTH LOGIN', b64(BOX), b64(PASSWORD)], true],
  ['LOGIN, initial response', [`AUTH LOGIN ${b64(BOX)}`, b64(PASSWORD)], true],
  ['lower-case mechanism', [`auth plain ${plain(BOX, PASSWORD)}`], true],
  ['wrong password', [`AUTH PLAIN ${plain(BOX, 'wrong')}`], false],
  ['unknown mailbox', [`AUTH PLAIN ${plain('nobody@hostile.test', PASSWORD)}`], false],
  ['empty user', [`AUTH PLAIN ${plain('', PASSWORD)}`], false],
  ['empty password', [`AUTH PLAIN ${plain(BOX, '')}`], false],
  ['not base64', ['AUTH PLAIN !!!!'], false],
  ['"=" (empty)', ['AUTH PLAIN ='], false],
  ['two NULs only', [`AUTH PLAIN ${b64('\0\0')}`], false],
  ['no NUL', [`AUTH PLAIN ${b64('abc')}`], false],
  ['four parts', [`AUTH PLAIN ${b64(`\0${BOX}\0${PASSWORD}\0x`)}`], false],
  ['another authzid', [`AUTH PLAIN ${plain(BOX, PASSWORD, 'postmaster@hostile.test')}`], false],
  ['3 KB user', [`AUTH PLAIN ${plain(`${'u'.repeat(3000)}@hostile.test`, PASSWORD)}`], false],
  ['64 KB user', [`AUTH PLAIN ${plain(`${'u'.repeat(65_536)}@hostile.test`, PASSWORD)}`], false],
  ['SQL in user and password', [`AUTH PLAIN ${plain("' OR '1'='1@hostile.test", "' OR '1'='1")}`], false],
  ['SQL comment after user', [`AUTH PLAIN ${plain(`${BOX}' --`, 'x')}`], false],
  ['user%domain', [`AUTH PLAIN ${plain('box%hostile.test', PASSWORD)}`], undefined],
  ['upper-case login', [`AUTH PLAIN ${plain('BOX@HOSTILE.TEST', PASSWORD)}`], undefined],
  ['8-bit user', [`AUTH PLAIN ${plain('b\u00f6x@hostile.test', PASSWORD)}`], false],
  ['invalid UTF-8', [`AUTH PLAIN ${Buffer.from([0, 0xff, 0xfe, 0, 0xc3, 0x28]).toString('base64')}`], false],
  ['cancel PLAIN', ['AUTH PLAIN', '*'], false],
  ['cancel LOGIN at the user', ['AUTH LOGIN', '*'], false],
  ['cancel LOGIN at the password', ['AUTH LOGIN', b64(BOX), '*'], false],
  ['LOGIN junk', ['AUTH LOGIN', '!!!', '!!!'], false],
  ['LOGIN empty lines', ['AUTH LOGIN', '', ''], false],
  ['CRAM-MD5', ['AUTH CRAM-MD5'], false],
  ['no mechanism', ['AUTH'], false],
  ['extra words', [`AUTH PLAIN ${plain(BOX, PASSWORD)} extra junk`], undefined],
  ['twice', [`AUTH PLAIN ${plain(BOX, PASSWORD)}`, `AUTH PLAIN ${plain(BOX, PASSWORD)}`], true],
  ['inside a transaction', ['MAIL FROM:<a@client.test>', `AUTH PLAIN ${plain(BOX, PASSWORD)}`], false],
  ['bare CR in the response', ['AUTH PLAIN', 'AAAA\rAAAA'], false],
  ['NUL in the response', ['AUTH PLAIN', 'AAAA\0AAAA'], false],
  ['8-bit bytes in the response', ['AUTH PLAIN', '\xff\xfe\xfd\xfc'], false],
];

void test('AUTH PLAIN and LOGIN over STARTTLS with malformed, oversized, cancelled and hostile responses', () =>
  h.guard(async () => {
    for (const [what, lines, auth] of AUTH_CASES) {
      const w = await secured();
      try {
        const replies: string[] = [];
        for (const line of lines) {
          w.send(`${line}\r\n`);
          const r = await w.reply();
          assert.match(r, /^\d{3}[ -]/, `AUTH ${what}: after ${JSON.stringify(line.slice(0, 60))}: ${r}`);
          replies.push(r);
        }
        if (replies.at(-1)?.startsWith('334')) {
          w.send('*\r\n');
          replies.push(await w.reply());
        }
        const ok = replies.some((r) => r.startsWith('235'));
        if (auth === false) assert.equal(ok, false, `AUTH ${what} succeeded: ${replies.join('')}`);
        if (auth === true) assert.equal(ok, true, `AUTH ${what} failed: ${replies.join('')}`);
        w.send('NOOP\r\nQUIT\r\n');
        assert.equal(await w.code(), 250, `AUTH ${what}: the session does not go on`);
        assert.equal(await w.code(), 221);
        assert.ok(await w.closes());
        assertSmtpLines(w.received, `AUTH ${what}`);
      } finally {
        w.destroy();
      }
      await h.health(`AUTH ${what}`);
    }
  }));

const SEED = Number(process.env['HOSTILE_SEED'] ?? 1212);
const RUNS = Number(process.env['HOSTILE_RUNS'] ?? 100);

/** Random bytes with at most 8 line ends (past 10 errors each error reply is delayed: the tarpit, not a hang). */
const bytesArb = fc.uint8Array({ maxLength: 2048 }).map((b) => {
  let lf = 0;
  return Buffer.from(b.map((c) => (c === 10 && ++lf > 8 ? 0x78 : c)));
});

type Where = 'banner' | 'ehlo' | 'tls-handshake' | 'tls-ehlo' | 'auth-response' | 'submission' | 'data';

async function openAt(where: Where): Promise<Wire> {
  if (where === 'tls-handshake') return afterStartTls();
  if (where === 'tls-ehlo') return secured();
  if (where === 'auth-response') {
    const w = await secured();
    w.send('AUTH PLAIN\r\n');
    assert.equal(await w.code(), 334);
    return w;
  }
  const w = await Wire.connect(where === 'submission' ? h.ports.submission : h.ports.smtp, {
    localAddress: freshLoopback(),
  });
  assert.equal(await w.code(), 220);
  if (where === 'banner') return w;
  w.send('EHLO client.test\r\n');
  assert.equal(await w.code(), 250);
  if (where === 'data') {
    w.send(`MAIL FROM:<random@client.test>\r\nRCPT TO:<${BOX}>\r\nDATA\r\n`);
    assert.deepEqual([await w.code(), await w.code(), await w.code()], [250, 250, 354]);
  }
  return w;
}

void test(`property (fast-check, seed ${SEED}, ${RUNS} runs): random bytes in every state, then QUIT, FIN or RST`, () =>
  h.guard(async () => {
    const where = fc.constantFrom<Where>(
      'banner',
      'ehlo',
      'tls-handshake',
      'tls-ehlo',
      'auth-response',
      'submission',
      'data',
    );
    await fc.assert(
      fc.asyncProperty(where, bytesArb, fc.constantFrom('quit', 'fin', 'rst'), async (at, bytes, end) => {
        const what = `random ${bytes.length} bytes at ${at}, then ${end}`;
        const w = await openAt(at);
        try {
          await w.write(bytes);
          if (end === 'rst') return void w.reset();
          if (end === 'quit') await w.write(at === 'data' ? '\r\n.\r\nQUIT\r\n' : '\r\nQUIT\r\n');
          w.end();
          assert.ok(
            await w.closes(20_000),
            `${what}: the server did not end the session within 20 s after the client's FIN`,
          );
          if (at === 'tls-handshake') assertNoLeak(w.received.replace(/[^\x20-\x7e\r\n]/g, ''), what);
          else assertSmtpLines(w.received, what);
          if (at === 'data') {
            const lines = w.received.split('\r\n');
            const verdict = lines
              .slice(lines.findIndex((l) => l.startsWith('354 ')) + 1)
              .find((l) => /^\d{3} /.test(l))
              ?.slice(0, 3);
            const body = Buffer.from(bytes).toString('latin1');
            // cut off by FIN: never a message; ended by CRLF.CRLF: the DATA oracle's verdict
            if (end === 'fin') assert.notEqual(verdict, '250', `${what}: a message without its end was accepted`);
            else if (endsOnlyAtTheEnd(body))
              assert.equal(Number(verdict), dataVerdict(body), `${what}: ${JSON.stringify(body)}`);
          }
        } finally {
          w.destroy();
          await h.health(what);
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }));

void test('a TLS session open through all the cases above is unaffected: its message is accepted and delivered', () =>
  h.guard(async () => {
    await finishBystander(h, bystander);
  }));
