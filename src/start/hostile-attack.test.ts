// The attack battery (src/smtpd/README.md, "The attack battery"): 60 clients at once flooding smtp, submission,
// tier: system (needs quail start, swaks, python3, curl)
// pop3, odmr and the web admin with pipelined commands and megabytes of DATA, cut by FIN or RST in mid-write;
// STARTTLS/STLS command injection on every listener that offers it; slow clients (a byte a second, slowloris
// headers) and odd ones (invalid UTF-8 and 10 MB in AUTH, APOP, huge POSTs and headers); garbage in every SMTP
// session state. After each, every listener serves a real client (swaks, poplib, curl) with the same children.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Attack, BOX, PASSWORD, raw, type Kind } from '../../test/support/attack.js';
import {
  assertNoLeak,
  assertSmtpLines,
  freshLoopback,
  parallel,
  plain,
  Wire,
} from '../../test/support/hostile-wire.js';
import { sleep } from '../../test/support/start.js';

let a: Attack;
before(async () => {
  a = await Attack.start('hostile-attack');
});
after(async () => {
  await a.stop();
});

/** `p`'s value, or `late` when it has not settled within `ms` (the timer is cleared: nothing keeps the test alive). */
async function within<T, L>(p: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<L>((r) => (timer = setTimeout(() => r(late), ms)));
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

const times = (s: string, n: number): Buffer => Buffer.from(s.repeat(n), 'latin1');
const body = (mb: number): Buffer => Buffer.alloc(mb << 20, 'a line of the body\r\n');

/** What each flooding client pipelines, by listener (two kinds each: commands, and a long DATA or POST). */
const FLOODS: Readonly<Record<Kind, readonly [() => Buffer, () => Buffer]>> = {
  smtp: [
    () => times(`EHLO f.test\r\nMAIL FROM:<flood@client.test>\r\nRCPT TO:<${BOX}>\r\nRSET\r\n`, 5_000),
    () =>
      Buffer.concat([Buffer.from(`EHLO f.test\r\nMAIL FROM:<f@client.test>\r\nRCPT TO:<${BOX}>\r\nDATA\r\n`), body(4)]),
  ],
  submission: [
    () => times('EHLO f.test\r\nNOOP\r\nHELP\r\nVRFY x\r\n', 5_000),
    () =>
      Buffer.concat([
        Buffer.from(
          `EHLO f.test\r\nAUTH PLAIN ${plain(BOX, PASSWORD)}\r\nMAIL FROM:<${BOX}>\r\nRCPT TO:<${BOX}>\r\nDATA\r\n`,
        ),
        body(4),
      ]),
  ],
  pop3: [
    () => Buffer.concat([Buffer.from(`USER ${BOX}\r\nPASS ${PASSWORD}\r\n`), times('STAT\r\nLIST\r\nUIDL\r\n', 5_000)]),
    () => times('CAPA\r\nNOOP\r\nUSER x\r\n', 5_000),
  ],
  odmr: [() => times('EHLO f.test\r\nNOOP\r\nRSET\r\n', 5_000), () => times('NOOP\r\n', 20_000)],
  admin: [
    () => times('GET /login HTTP/1.1\r\nHost: attack.test\r\n\r\n', 2_000),
    () =>
      Buffer.concat([
        Buffer.from(
          'POST /login HTTP/1.1\r\nHost: attack.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9000000\r\n\r\n',
        ),
        body(4),
      ]),
  ],
};

type Cut = 'fin' | 'rst' | 'rst-after-reply';

/** One flooding client: the whole flood handed to the socket at once, then cut while it is still being sent. */
async function flood(kind: Kind, make: () => Buffer, cut: Cut): Promise<void> {
  const s = await raw(a.ports[kind]);
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  const replied = new Promise<void>((r) => s.once('data', () => r()));
  s.on('data', () => undefined);
  s.write(make());
  if (cut === 'fin') {
    s.end();
    // the server reads to our FIN (or gives up on the rest) and closes: no session is left half-open
    const gone = await within(
      closed.then(() => true),
      60_000,
      false,
    );
    assert.ok(gone, `${kind} flood then FIN: the server kept the connection for 60 s`);
    s.destroy();
    return;
  }
  if (cut === 'rst-after-reply') await within(Promise.race([replied, closed]), 10_000, undefined);
  else await new Promise((r) => setImmediate(r));
  s.resetAndDestroy();
}

void test('60 clients at once flood every listener with pipelined commands and megabytes of DATA, cut by FIN or RST in mid-write', async () => {
  const kinds = Object.keys(FLOODS) as Kind[];
  const cuts: readonly Cut[] = ['fin', 'rst', 'rst-after-reply'];
  const clients = kinds.flatMap((kind) =>
    Array.from({ length: 12 }, (_, i) => [kind, FLOODS[kind][i % 2] ?? FLOODS[kind][0], cuts[i % 3] ?? 'fin'] as const),
  );
  for (let round = 0; round < 2; round++) await parallel(clients, clients.length, (c) => flood(...c));
  await a.serving('60 clients flooding and cutting, twice');
});

/** Everything the server sends after `mark` (what it said inside TLS, in the clear after the handshake). */
const since = (w: Wire, mark: number): string => w.received.slice(mark);

void test('STARTTLS / STLS command injection: plaintext pipelined after the TLS command is never executed inside TLS', async () => {
  const smtpLike = async (kind: 'smtp' | 'submission' | 'odmr', injected: string): Promise<void> => {
    const what = `${kind}: STARTTLS\\r\\n${injected.trim()} in one packet`;
    const w = await Wire.connect(a.ports[kind], { localAddress: freshLoopback() });
    try {
      assert.equal(await w.code(), 220);
      w.send(`EHLO client.test\r\nSTARTTLS\r\n${injected}`);
      assert.equal(await w.code(), 250, what);
      assert.equal(await w.code(), 220, what);
      await w.upgrade();
      const mark = w.received.length;
      w.send('QUIT\r\n');
      assert.ok(await w.closes(), `${what}: QUIT inside TLS did not end the session`);
      // exactly one reply inside TLS, QUIT's: the injected command got none
      assert.match(since(w, mark), /^221 [^\r\n]*\r\n$/, `${what}: inside TLS the server said ${since(w, mark)}`);
    } finally {
      w.destroy();
    }
  };
  await smtpLike('smtp', 'RSET\r\n');
  await smtpLike('smtp', `MAIL FROM:<smuggled@client.test>\r\nRCPT TO:<${BOX}>\r\nDATA\r\n`);
  await smtpLike('submission', `AUTH PLAIN ${plain(BOX, PASSWORD)}\r\n`);
  await smtpLike('odmr', 'NOOP\r\n');
  const w = await Wire.connect(a.ports.pop3, { localAddress: freshLoopback() });
  try {
    assert.match(await w.line(), /^\+OK /);
    w.send(`STLS\r\nUSER ${BOX}\r\n`);
    assert.match(await w.line(), /^\+OK /, 'STLS');
    await w.upgrade();
    const mark = w.received.length;
    w.send(`PASS ${PASSWORD}\r\nQUIT\r\n`);
    assert.ok(await w.closes(), 'pop3: QUIT inside TLS did not end the session');
    // the injected USER was dropped: PASS without USER is refused, then QUIT
    assert.match(since(w, mark), /^-ERR [^\r\n]*\r\n\+OK[^\r\n]*\r\n$/, `pop3 inside TLS: ${since(w, mark)}`);
  } finally {
    w.destroy();
  }
  await a.serving('STARTTLS injection');
});

/** Sends `line` one byte a second (a deadline per byte, not a speed), then reads the answer. */
async function trickle(w: Wire, line: string, served: boolean): Promise<void> {
  for (const ch of line) {
    const took = await w.write(ch);
    if (!took && !served) return;
    assert.ok(took, 'the server closed while the client trickled');
    await sleep(1000);
  }
}

void test('slow clients: a command a byte a second is served on smtp and pop3, cut off at the idle time on odmr; slowloris headers are cut off while the web admin serves', async () => {
  const loris = await Promise.all(Array.from({ length: 20 }, () => raw(a.ports.admin)));
  const cut = loris.map(
    (s) =>
      new Promise<string>((resolve) => {
        let got = '';
        s.on('data', (c: Buffer) => (got += c.toString('latin1')));
        s.once('close', () => resolve(got));
        s.write('GET /login HTTP/1.1\r\nHost: attack.test\r\n');
      }),
  );
  let n = 0;
  const drip = setInterval(() => {
    for (const s of loris) if (!s.destroyed) s.write(`X-Loris-${n}: ${n}\r\n`);
    n++;
  }, 1000);
  try {
    await Promise.all(
      (
        [
          ['smtp', 'NOOP\r\n', /^250 /],
          ['pop3', 'CAPA\r\n', /^\+OK/],
          // ODMR gives a whole command line timeoutsmtpd (5 s here), however it trickles in: 12 s is cut off
          ['odmr', 'NOOP 123456\r\n', /^421 4\.4\.2 /],
        ] as const
      ).map(async ([kind, line, want]) => {
        const w = await Wire.connect(a.ports[kind], { localAddress: freshLoopback() });
        try {
          await w.line();
          await trickle(w, line, kind !== 'odmr');
          assert.match(await w.line(), want, `${kind}: a command sent a byte a second`);
        } finally {
          w.destroy();
        }
      }),
    );
    await a.serving('slowloris under way');
    for (const c of cut) {
      const got = await within(c, 60_000, 'still open after 60 s');
      assert.notEqual(got, 'still open after 60 s', 'a slowloris connection was never cut off');
      assert.match(got, /^(?:$|HTTP\/1\.1 408 )/, `a slowloris connection got ${got.slice(0, 200)}`);
    }
  } finally {
    clearInterval(drip);
    for (const s of loris) s.destroy();
  }
  await a.serving('slowloris');
});

/** Writes `req` to the web admin and returns what came back until the server closed (60 s at most). */
async function http(req: Buffer | string, chunks: readonly Buffer[] = []): Promise<string> {
  const s = await raw(a.ports.admin);
  let got = '';
  s.on('data', (c: Buffer) => (got += c.toString('latin1')));
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.write(req);
  for (const c of chunks) if (!s.destroyed) await new Promise((r) => s.write(c, r));
  await within(closed, 60_000, undefined);
  s.destroy();
  return got;
}

void test('odd clients: invalid UTF-8 and 10 MB in AUTH PLAIN, USER, PASS and APOP; a 10 MB POST (sized and chunked) and a 100 KB header on the web admin', async () => {
  const big = 'QUFB'.repeat(10 << 18);
  // logins of no mailbox: the failures slow down that login, not box@ (whose password the health checks use)
  const bad = Buffer.from('\0odd@attack.test\0\xff\xfe\xc3\x28\xed\xa0\x80', 'latin1').toString('base64');
  const w = await Wire.connect(a.ports.smtp, { localAddress: freshLoopback() });
  w.send(`EHLO client.test\r\nAUTH PLAIN ${bad}\r\nAUTH PLAIN ${big}\r\nAUTH PLAIN\r\n${bad}\r\nQUIT\r\n`);
  assert.ok(await w.closes(30_000), 'smtp: the odd AUTH session did not end');
  assertSmtpLines(w.received, 'smtp odd AUTH');
  const codes = w.received
    .split('\r\n')
    .filter((l) => /^\d{3} /.test(l))
    .map((l) => l.slice(0, 3));
  assert.deepEqual(codes, ['220', '250', '535', '500', '334', '535', '221'], w.received);
  w.destroy();
  const p = await Wire.connect(a.ports.pop3, { localAddress: freshLoopback() });
  p.send(
    `USER \xff\xfe\xc3\x28\r\nPASS \xed\xa0\x80\r\nAPOP odd@attack.test \xff${'0'.repeat(31)}\r\nAPOP ${big}\r\nQUIT\r\n`,
  );
  assert.ok(await p.closes(30_000), 'pop3: the odd session did not end');
  const lines = p.received.split('\r\n').slice(0, -1);
  for (const l of lines) assert.match(l, /^(?:\+OK|-ERR)/, `pop3 odd input: ${p.received}`);
  assertNoLeak(p.received, 'pop3 odd input');
  assert.ok(lines.filter((l) => l.startsWith('-ERR')).length >= 3, p.received);
  p.destroy();
  const post = (extra: string): string =>
    `POST /login HTTP/1.1\r\nHost: attack.test\r\nContent-Type: application/x-www-form-urlencoded\r\n${extra}\r\n`;
  const tenMb = Array.from({ length: 10 }, () => Buffer.alloc(1 << 20, 'a'));
  assert.match(await http(post('Content-Length: 10485760\r\n'), tenMb), /^HTTP\/1\.1 413 /);
  const chunked = tenMb.map((c) => Buffer.concat([Buffer.from('100000\r\n'), c, Buffer.from('\r\n')]));
  assert.match(
    await http(post('Transfer-Encoding: chunked\r\n'), [...chunked, Buffer.from('0\r\n\r\n')]),
    /^HTTP\/1\.1 413 /,
  );
  assert.match(
    await http(`GET /login HTTP/1.1\r\nHost: attack.test\r\nX-Big: ${'h'.repeat(100 * 1024)}\r\n\r\n`),
    /^HTTP\/1\.1 431 /,
  );
  await a.serving('odd clients');
});

type State = 'pre-greet' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'tls' | 'auth-continuation';
const STATES: readonly State[] = ['pre-greet', 'ehlo', 'mail', 'rcpt', 'data', 'tls', 'auth-continuation'];
const GARBAGE: ReadonlyArray<readonly [string, () => Buffer]> = [
  ['NUL', () => Buffer.from('NOOP \0x\r\n', 'latin1')],
  ['bare CR', () => Buffer.from('NOOP \rx\r\n', 'latin1')],
  ['bare LF', () => Buffer.from('x\ny\n', 'latin1')],
  ['8-bit', () => Buffer.from('\xe9\xff\x80 <\xe9@\xe9>\r\n', 'latin1')],
  ['invalid UTF-8', () => Buffer.from('MAIL FROM:<\xc3\x28\xed\xa0\x80@client.test>\r\n', 'latin1')],
  ['5,000-byte line', () => Buffer.from(`${'x'.repeat(5000)}\r\n`)],
  ['random binary', () => randomBytes(512)],
];

/** A session on the smtp listener brought to `state` (pre-greet: nothing read yet, not even the banner). */
async function reach(state: State): Promise<Wire> {
  const w = await Wire.connect(a.ports.smtp, { localAddress: freshLoopback() });
  if (state === 'pre-greet') return w;
  assert.equal(await w.code(), 220);
  const step = async (line: string, want: number): Promise<void> => {
    w.send(`${line}\r\n`);
    assert.equal(await w.code(), want, `reaching ${state}: ${line}\n${w.received}`);
  };
  await step('EHLO client.test', 250);
  if (state === 'tls' || state === 'auth-continuation') {
    await step('STARTTLS', 220);
    await w.upgrade();
    await step('EHLO client.test', 250);
    if (state === 'auth-continuation') await step('AUTH LOGIN', 334);
    return w;
  }
  if (state === 'ehlo') return w;
  await step('MAIL FROM:<garbage@client.test>', 250);
  if (state === 'mail') return w;
  await step(`RCPT TO:<${BOX}>`, 250);
  if (state === 'rcpt') return w;
  await step('DATA', 354);
  return w;
}

void test('garbage in every SMTP session state (pre-greet, EHLO, MAIL, RCPT, DATA, STARTTLS, AUTH continuation): clear codes, never internals', async () => {
  const cases = STATES.flatMap((state) => GARBAGE.map(([name, make]) => [state, name, make] as const));
  await parallel(cases, 8, async ([state, name, make]) => {
    const what = `${state}, ${name}`;
    const w = await reach(state);
    try {
      w.send(make());
      w.send(state === 'data' ? '\r\n.\r\nQUIT\r\n' : '\r\nQUIT\r\n');
      w.end();
      assert.ok(await w.closes(30_000), `${what}: the session did not end within 30 s of QUIT and FIN`);
      const text = w.received.endsWith('\r\n') ? w.received : w.received.slice(0, w.received.lastIndexOf('\r\n') + 2);
      assertSmtpLines(text, what);
      assert.match(text, /^[245]\d\d /m, `${what}: no reply at all`);
    } finally {
      w.destroy();
    }
  });
  await a.serving('garbage in every state');
});
