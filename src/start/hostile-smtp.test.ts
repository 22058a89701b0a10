// Issue 12, SMTP: every command in every session state (plain, STARTTLS, AUTH, submission) with hostile arguments,
// tier: system (needs quail start)
// lines of 1 byte to 10 MB, disconnects (FIN and RST) in the middle of every command, TLS and AUTH abuse. After
// every case the same processes serve, a fresh session gets its banner and a normal message is delivered.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BOX, finishBystander, Hostile, openBystander, PASSWORD } from '../../test/support/hostile.js';
import {
  asLine,
  assertNoLeak,
  assertSmtpLines,
  burst,
  freshLoopback,
  parallel,
  plain,
  SIZES,
  Wire,
  type Variant,
} from '../../test/support/hostile-wire.js';
import { waitUntil } from '../../test/support/wait.js';

let h: Hostile;
/** A transaction left in the middle of DATA while the cases run, finished at the end: no case may disturb it. */
let bystander: Wire;
before(async () => {
  h = await Hostile.start('hostile-smtp');
  bystander = await openBystander(h);
});
after(async () => {
  await h.stop();
});

type State =
  | 'greeted'
  | 'helo'
  | 'ehlo'
  | 'mail'
  | 'rcpt'
  | 'refused-data'
  | 'tls'
  | 'tls-ehlo'
  | 'tls-auth'
  | 'tls-auth-rcpt'
  | 'auth-login'
  | 'submission';
const STATES: readonly State[] = [
  'greeted',
  'helo',
  'ehlo',
  'mail',
  'rcpt',
  'refused-data',
  'tls',
  'tls-ehlo',
  'tls-auth',
  'tls-auth-rcpt',
  'auth-login',
  'submission',
];

let caseNo = 0;
const sender = (): string => `c${++caseNo}@client.test`;

/** A connection brought to `state`, each step checked; `from` is this case's envelope sender. */
async function reach(state: State, from: string): Promise<Wire> {
  const w = await Wire.connect(state === 'submission' ? h.ports.submission : h.ports.smtp, {
    localAddress: freshLoopback(),
  });
  const step = async (line: string, want: number): Promise<void> => {
    w.send(`${line}\r\n`);
    const got = await w.code();
    assert.equal(got, want, `reaching ${state}: ${line} → ${got}\n${w.received}`);
  };
  assert.equal(await w.code(), 220, `banner: ${w.received}`);
  if (state === 'greeted') return w;
  if (state === 'helo') return (await step('HELO client.test', 250), w);
  await step('EHLO client.test', 250);
  if (state === 'ehlo' || state === 'submission') return w;
  if (state === 'mail' || state === 'rcpt' || state === 'refused-data') {
    await step(`MAIL FROM:<${from}>`, 250);
    if (state === 'mail') return w;
    await step(`RCPT TO:<${BOX}>`, 250);
    if (state === 'rcpt') return w;
    await step('DATA', 354);
    await step('Subject: refused\r\n\r\nbare\rCR\r\n.', 554);
    return w;
  }
  await step('STARTTLS', 220);
  await w.upgrade();
  if (state === 'tls') return w;
  await step('EHLO client.test', 250);
  if (state === 'tls-ehlo') return w;
  if (state === 'auth-login') return (await step('AUTH LOGIN', 334), w);
  await step(`AUTH PLAIN ${plain(BOX, PASSWORD)}`, 235);
  if (state === 'tls-auth') return w;
  await step(`MAIL FROM:<${from}>`, 250);
  await step(`RCPT TO:<${BOX}>`, 250);
  return w;
}

const VERBS: ReadonlyArray<readonly [string, string]> = [
  ['HELO', 'client.test'],
  ['EHLO', 'client.test'],
  ['MAIL', 'FROM:<x@client.test>'],
  ['RCPT', `TO:<${BOX}>`],
  ['DATA', ''],
  ['RSET', ''],
  ['NOOP', ''],
  ['QUIT', ''],
  ['VRFY', 'box'],
  ['EXPN', 'list'],
  ['HELP', ''],
  ['STARTTLS', ''],
  ['AUTH', `PLAIN ${plain(BOX, PASSWORD)}`],
  ['BDAT', '100 LAST'],
  ['ETRN', 'hostile.test'],
  ['TURN', ''],
  ['XCLIENT', 'ADDR=192.0.2.1'],
  ['', ''],
  ['\x01\x7f', 'x'],
];

/** Argument variants: none, the normal one, junk, extra parameters, NUL, bare CR, 8-bit, overlong, LF-only, odd spacing. */
const VARIANTS: readonly Variant[] = [
  ['none', (v) => v],
  ['normal', (v, a) => `${v} ${a}`],
  ['junk', (v) => `${v} <<>>:@@,,;;"\\<x@[999.1.2.3]>`],
  ['params', (v, a) => `${v} ${a} SIZE=-1 BODY=BINARYMIME AUTH=<> SMTPUTF8 RET=HDRS ${'X=Y '.repeat(40)}`],
  ['nul', (v, a) => `${v} ${a}\0x`],
  ['bare-cr', (v, a) => `${v} \r${a}`],
  ['8bit', (v) => `${v} \xff\xfe\x80\xe9<\xe9@\xe9.test>`],
  ['overlong', (v, a) => `${v} ${a}${'x'.repeat(5000)}`],
  ['lf-only', (v, a) => `${v.toLowerCase()} ${a}\n`],
  ['spacing', (v, a) => `  ${v}\t ${a}   `],
];

/**
 * One command in one state: a well-formed reply without internals, the session still answers (or was closed
 * with a reply), nothing queued; a 354 gets a body that must be refused, a 334 a cancel, a 220 a handshake.
 */
async function matrixCase(
  state: State,
  verb: string,
  arg: string,
  variant: string,
  make: (v: string, a: string) => string,
): Promise<void> {
  const from = sender();
  const what = `${state} ${JSON.stringify(verb)} ${variant}`;
  const w = await reach(state, from);
  try {
    const line = make(verb, arg);
    w.send(asLine(line));
    let r = await w.reply();
    assert.notEqual(r, 'timeout', `${what}: no reply within 15 s (a hang)`);
    assert.notEqual(r, 'closed', `${what}: the connection closed without a reply`);
    for (let i = 0; i < 3 && typeof r === 'string' && r.startsWith('334'); i++) {
      w.send('*\r\n');
      r = await w.reply();
    }
    let code = typeof r === 'string' ? Number(r.slice(0, 3)) : 0;
    if (code === 354) {
      w.send('Subject: matrix\r\n\r\nNUL \0 here\r\n.\r\n');
      code = await w.code();
      assert.ok(code >= 400, `${what}: a body with a NUL got ${code}`);
    }
    if (code === 220 && verb === 'STARTTLS') {
      await w.upgrade();
      w.send('EHLO again.test\r\n');
      assert.equal(await w.code(), 250, `${what}: EHLO after STARTTLS`);
    }
    if (code === 221 || code === 421) {
      assert.ok(await w.closes(10_000), `${what}: ${code} but the connection stays open`);
    } else {
      w.send('QUIT\r\n');
      const q = await w.reply();
      if (q !== 'closed') assert.match(String(q), /^221 /, `${what}: QUIT → ${String(q)}\n${w.received}`);
      assert.ok(await w.closes(10_000), `${what}: still open 10 s after QUIT`);
    }
    assertSmtpLines(w.received, what);
    h.expectQueued(from, 0, what);
  } finally {
    w.destroy();
  }
}

/**
 * The same command with all its variants pipelined in one burst, then QUIT and FIN: whatever the burst does to the
 * state (a 354 makes the rest a message that never ends, STARTTLS drops it, 334 takes a line), the session ends,
 * every reply is well-formed up to a 220 for STARTTLS (TLS bytes may follow), and nothing is queued.
 */
async function burstCase(state: State, verb: string, arg: string): Promise<void> {
  const from = sender();
  const what = `${state} ${JSON.stringify(verb)} burst`;
  const w = await reach(state, from);
  try {
    const text = await burst(w, VARIANTS, verb, arg, 'QUIT\r\n', /^220 (?:2\.0\.0 )?ready to start TLS\r\n/m, what);
    assertSmtpLines(text.endsWith('\r\n') ? text : text.slice(0, text.lastIndexOf('\r\n') + 2), what);
    h.expectQueued(from, 0, what);
  } finally {
    w.destroy();
  }
}

void test('every SMTP command in every session state, with hostile arguments, one by one and pipelined', () =>
  h.guard(async () => {
    for (const state of STATES) {
      for (const [verb, arg] of VERBS) {
        await Promise.all([
          parallel(VARIANTS, 10, ([variant, make]) => matrixCase(state, verb, arg, variant, make)),
          burstCase(state, verb, arg),
        ]);
        await h.health(`${state} ${JSON.stringify(verb)}`);
      }
    }
  }));

/** The rest of a session that must still work: QUIT answered with 221 and the connection closed. */
async function quits(w: Wire, what: string): Promise<void> {
  w.send('QUIT\r\n');
  assert.match(String(await w.reply(30_000)), /^221 /, `${what}: QUIT after it\n${w.received.slice(-500)}`);
  assert.ok(await w.closes(), `${what}: still open after QUIT`);
}

void test('lines of 1 byte to 10 MB: command lines, MAIL and RCPT arguments, DATA lines, AUTH responses; with and without LF', () =>
  h.guard(async () => {
    for (const n of SIZES) {
      const what = `${n}-byte`;
      // a command line, and MAIL / RCPT arguments, of n bytes
      for (const [state, line] of [
        ['ehlo', `NOOP ${'x'.repeat(Math.max(0, n - 5))}`],
        ['greeted', 'x'.repeat(n)],
        ['ehlo', `MAIL FROM:<${'m'.repeat(n)}@client.test>`],
        ['mail', `RCPT TO:<${'r'.repeat(n)}@hostile.test>`],
      ] as const) {
        const w = await reach(state, sender());
        w.send(`${line}\r\n`);
        const r = await w.reply(60_000);
        assert.match(String(r), /^[245]\d\d /, `${what} line in ${state}: ${String(r)}`);
        await quits(w, `${what} line in ${state}`);
        assertSmtpLines(w.received, what);
        w.destroy();
      }
      // n bytes and no line end, then FIN (the server must close) or RST
      for (const cut of ['fin', 'rst'] as const) {
        const w = await reach('ehlo', sender());
        await w.write(`MAIL FROM:<${'z'.repeat(n)}`);
        if (cut === 'rst') w.reset();
        else {
          w.end();
          assert.ok(await w.closes(), `${what} without LF, then FIN: the server keeps the connection`);
          assertSmtpLines(w.received, what);
        }
        w.destroy();
      }
      // a DATA line of n bytes: accepted (no databytes limit here) and delivered whole, over TLS from 1 MB up
      {
        const from = sender();
        const w = await reach(n >= 1 << 20 ? 'tls-auth-rcpt' : 'rcpt', from);
        w.send('DATA\r\n');
        assert.equal(await w.code(), 354);
        await w.write(`Subject: ${what} line\r\n\r\n${'y'.repeat(n)}\r\n.\r\n`);
        assert.match(String(await w.reply(60_000)), /^250 /, `${what} DATA line`);
        await quits(w, `${what} DATA line`);
        w.destroy();
        h.expectQueued(from, 1, `${what} DATA line`);
      }
      // the same line ended by a bare LF: 451 at once, the connection closed, nothing queued
      {
        const from = sender();
        const w = await reach('rcpt', from);
        w.send('DATA\r\n');
        assert.equal(await w.code(), 354);
        await w.write(`Subject: ${what} bare LF\r\n\r\n${'y'.repeat(n)}\n.\n`);
        const r = await w.reply(60_000);
        assert.match(String(r), /^451 /, `${what} DATA line ending in a bare LF: ${String(r)}`);
        assert.ok(await w.closes(), `${what} bare LF: connection left open`);
        w.destroy();
        h.expectQueued(from, 0, `${what} DATA line ending in a bare LF`);
      }
      // an AUTH PLAIN response of n bytes (over STARTTLS): refused, the session goes on
      {
        const w = await reach('tls-ehlo', sender());
        w.send('AUTH PLAIN\r\n');
        assert.equal(await w.code(), 334);
        await w.write(`${'QUFB'.repeat(Math.ceil(n / 4)).slice(0, n)}\r\n`);
        const r = await w.reply(60_000);
        assert.match(String(r), /^5\d\d /, `${what} AUTH response: ${String(r)}`);
        await quits(w, `${what} AUTH response`);
        w.destroy();
      }
      await h.health(`${what} lines`);
    }
  }));

type Cut = 'half' | 'no-lf' | 'cr' | 'whole';
const CUTS: readonly Cut[] = ['half', 'no-lf', 'cr', 'whole'];

void test('disconnects (FIN and RST) in the middle of every command, of DATA and of AUTH', () =>
  h.guard(async () => {
    const receiving = new Set(h.queueTmp()); // the bystander's message
    const commands: ReadonlyArray<readonly [State, string]> = [
      ['greeted', 'HELO client.test'],
      ['greeted', 'EHLO client.test'],
      ['ehlo', 'MAIL FROM:<cut@client.test>'],
      ['mail', `RCPT TO:<${BOX}>`],
      ['rcpt', 'DATA'],
      ['rcpt', 'RSET'],
      ['ehlo', 'NOOP'],
      ['ehlo', 'QUIT'],
      ['ehlo', 'VRFY box'],
      ['ehlo', 'STARTTLS'],
      ['ehlo', 'HELP'],
      ['tls-ehlo', `AUTH PLAIN ${plain(BOX, PASSWORD)}`],
      ['tls-ehlo', 'AUTH LOGIN'],
      ['tls-auth-rcpt', 'DATA'],
      ['submission', 'MAIL FROM:<cut@client.test>'],
    ];
    for (const [state, command] of commands) {
      const cases = CUTS.flatMap((cut) => (['fin', 'rst'] as const).map((how) => [cut, how] as const));
      await parallel(cases, 8, async ([cut, how]) => {
        const from = sender();
        const what = `${state} ${command} cut ${cut} ${how}`;
        const w = await reach(state, from);
        const bytes =
          cut === 'half'
            ? command.slice(0, Math.ceil(command.length / 2))
            : cut === 'no-lf'
              ? command
              : cut === 'cr'
                ? `${command}\r`
                : `${command}\r\n`;
        await w.write(bytes);
        if (how === 'rst') w.reset();
        else {
          w.end();
          assert.ok(await w.closes(), `${what}: the server keeps a connection its client closed`);
          assertNoLeak(w.received, what);
        }
        w.destroy();
        h.expectQueued(from, 0, what);
      });
      await h.health(`cut ${state} ${command}`);
    }
    const bodies = [
      '',
      'Subj',
      'Subject: x\r',
      'Subject: x\r\n',
      'Subject: x\r\n\r\nbody\r\n',
      'body\r\n.',
      'body\r\n.\r',
      `big\r\n${'b'.repeat(1 << 20)}`,
      'body\r\n.\n',
      'body\r\n\0.\r',
    ];
    for (const body of bodies) {
      await parallel(['fin', 'rst'] as const, 2, async (how) => {
        const from = sender();
        const what = `DATA cut after ${JSON.stringify(body.slice(0, 40))} ${how}`;
        const w = await reach('rcpt', from);
        w.send('DATA\r\n');
        assert.equal(await w.code(), 354);
        await w.write(body);
        if (how === 'rst') w.reset();
        else {
          w.end();
          assert.ok(await w.closes(), `${what}: the server keeps a connection its client closed`);
          assertSmtpLines(w.received, what);
          assert.doesNotMatch(w.received.split('354 ')[1] ?? '', /^250 /m, `${what}: 250 for a message cut off`);
        }
        w.destroy();
        h.expectQueued(from, 0, what);
      });
      await h.health(`DATA cut ${JSON.stringify(body.slice(0, 40))}`);
    }
    // AUTH LOGIN cut at each challenge
    for (const step of [0, 1, 2]) {
      await parallel(['fin', 'rst'] as const, 2, async (how) => {
        const w = await reach('tls-ehlo', sender());
        w.send('AUTH LOGIN\r\n');
        assert.equal(await w.code(), 334);
        if (step >= 1) {
          w.send(`${Buffer.from(BOX).toString('base64')}\r\n`);
          assert.equal(await w.code(), 334);
        }
        if (step === 2) await w.write(Buffer.from(PASSWORD).toString('base64').slice(0, 5));
        if (how === 'rst') w.reset();
        else {
          w.end();
          assert.ok(await w.closes(), `AUTH LOGIN cut at step ${step}: the server keeps the connection`);
        }
        w.destroy();
      });
      await h.health(`AUTH LOGIN cut at step ${step}`);
    }
    // nothing half-written is left in the queue by the sessions cut off above
    const left = (): string[] => h.queueTmp().filter((f) => !receiving.has(f));
    await waitUntil(() => left().length === 0, 10_000, 50);
    assert.deepEqual(left(), [], 'queue/tmp keeps files of abandoned messages');
  }));

void test('more connections from one address than maxperip (20), SMTP and POP3 (10): the extra ones are refused, then all is as before', () =>
  h.guard(async () => {
    for (const [port, allowed, greeting, refusal] of [
      [h.ports.smtp, 20, /^220 /, /^421 /],
      [h.ports.pop3, 10, /^\+OK /, /^-ERR /],
    ] as const) {
      const from = freshLoopback();
      const conns = await Promise.all(
        Array.from({ length: allowed + 5 }, () => Wire.connect(port, { localAddress: from })),
      );
      try {
        const first = await Promise.all(conns.map((w) => (port === h.ports.smtp ? w.reply() : w.line())));
        assert.equal(first.filter((r) => greeting.test(r)).length, allowed, first.join(''));
        assert.equal(first.filter((r) => refusal.test(r)).length, 5, first.join(''));
        for (const r of first) assertNoLeak(r, 'over maxperip');
      } finally {
        for (const w of conns) w.destroy();
      }
      await h.health(`more than ${allowed} connections from one address to port ${port}`);
    }
  }));

void test('a session open through all the cases above is unaffected: its message is accepted and delivered', () =>
  h.guard(async () => {
    await finishBystander(h, bystander);
  }));
