// Issue 12, POP3: every command (USER, PASS, APOP, STAT, LIST, UIDL, RETR, TOP, DELE, NOOP, RSET, QUIT, CAPA, STLS,
// tier: system (needs quail start)
// AUTH) in AUTHORIZATION and TRANSACTION, plain, after STLS and on the implicit-TLS port, with bad, huge, negative and
// non-numeric arguments; lines of 1 byte to 10 MB; FIN and RST in the middle of every command and of a RETR; TLS
// garbage and half handshakes; random bytes (fast-check). After every case the same processes serve, a fresh
// session gets its banner and a normal message is delivered; no mailbox ever loses a message.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { DOMAIN, Hostile, PASSWORD } from '../../test/support/hostile.js';
import {
  asLine,
  assertNoLeak,
  burst,
  clientHello,
  freshLoopback,
  parallel,
  plain,
  SIZES,
  tlsGarbage,
  Wire,
  type Variant,
} from '../../test/support/hostile-wire.js';
import { waitFor } from '../../test/support/wait.js';

let h: Hostile;
let hello: Buffer;
const BOXES = ['pop1', 'pop2', 'pop3'];
/** Logged in (over STLS) before the cases, used after them: no case may disturb it. */
const STAY = 'stay';
let bystander: Wire;
/** The bystander's number of the 200 KB message. */
let bigMessage = 0;
const MESSAGES = 3;
before(async () => {
  h = await Hostile.start('hostile-pop3', [...BOXES, STAY]);
  hello = await clientHello();
  // three messages per mailbox: a small one, one with dot lines, one of 200 KB (streamed in chunks)
  const w = await Wire.connect(h.ports.smtp);
  assert.equal(await w.code(), 220);
  w.send('EHLO fill.test\r\n');
  assert.equal(await w.code(), 250);
  const bodies = [
    'Subject: one\r\n\r\nhello\r\n',
    'Subject: dots\r\n\r\n..leading dot\r\n..\r\n...\r\nend\r\n',
    `Subject: big\r\n\r\n${'0123456789abcdef\r\n'.repeat(11_000)}`,
  ];
  // one body at a time, each delivered everywhere before the next is sent: a mailbox lists by delivery time, and
  // the cases below rely on message 3 being the 200 KB one (deliveries of one batch run concurrently)
  for (const [i, body] of bodies.entries()) {
    for (const box of [...BOXES, STAY]) {
      w.send(`MAIL FROM:<fill@client.test>\r\nRCPT TO:<${box}@${DOMAIN}>\r\nDATA\r\n`);
      assert.deepEqual([await w.code(), await w.code(), await w.code()], [250, 250, 354]);
      w.send(`${body}.\r\n`);
      assert.equal(await w.code(), 250);
    }
    await waitFor(
      () => [...BOXES, STAY].every((b) => h.maildir(b).length >= i + 1),
      30_000,
      `message ${i + 1} delivered to every POP3 mailbox`,
    );
  }
  w.destroy();
  await waitFor(
    () => [...BOXES, STAY].every((b) => h.maildir(b).length >= MESSAGES),
    30_000,
    'the POP3 mailboxes were not filled',
  );
  bystander = await Wire.connect(h.ports.pop3, { localAddress: freshLoopback() });
  assert.match(await bystander.line(), /^\+OK/);
  bystander.send('STLS\r\n');
  assert.match(await bystander.line(), /^\+OK begin TLS/);
  await bystander.upgrade();
  bystander.send(`USER ${STAY}@${DOMAIN}\r\nPASS ${PASSWORD}\r\nLIST\r\n`);
  assert.match(await bystander.line(), /^\+OK/);
  assert.match(await bystander.line(), /^\+OK 3 messages/);
  // the three were delivered concurrently: their order in the mailbox (by mtime) is not the order they were sent in,
  // so the 200 KB one is found by its size, and the smallest is the one marked deleted
  const sizes = [...(await bystander.multiline()).matchAll(/^(\d+) (\d+)\r$/gm)].map((m) => [
    Number(m[1]),
    Number(m[2]),
  ]);
  sizes.sort((a, b) => (a[1] ?? 0) - (b[1] ?? 0));
  assert.equal(sizes.length, 3, 'LIST shows the three messages');
  bigMessage = sizes[2]?.[0] ?? 0;
  bystander.send(`DELE ${sizes[0]?.[0] ?? 0}\r\n`);
  assert.match(await bystander.line(), /^\+OK/);
  h.keepOpen(bystander, 'pop3d');
});
after(async () => {
  for (const b of [...BOXES, STAY])
    assert.equal(h.maildir(b).length, MESSAGES, `${b} lost or gained messages: no POP3 case may delete one`);
  await h.stop();
});

type State =
  'greeting' | 'user' | 'sasl' | 'stls' | 'pop3s' | 'transaction' | 'marked' | 'stls-transaction' | 'pop3s-transaction';
const AUTH_STATES: readonly State[] = ['greeting', 'user', 'sasl', 'stls', 'pop3s'];
const TX_STATES: readonly State[] = ['transaction', 'marked', 'stls-transaction', 'pop3s-transaction'];
let boxTurn = 0;
let n = 0;

/** A POP3 status line: `+OK`, `-ERR` or a SASL `+ ` continuation, printable, without internals. */
function assertStatus(line: string, what: string): void {
  assert.match(line, /^(\+OK|-ERR|\+)( [\x20-\x7e]*)?\r\n$/, `${what}: malformed status line ${JSON.stringify(line)}`);
  assertNoLeak(line, what);
}

/** A session brought to `state` (a transaction state logs in to the next of pop1..pop3). */
async function reach(state: State): Promise<Wire> {
  const implicit = state.startsWith('pop3s');
  const w = await Wire.connect(implicit ? h.ports.pop3s : h.ports.pop3, {
    localAddress: freshLoopback(),
    tls: implicit,
  });
  const step = async (line: string, want: RegExp): Promise<void> => {
    w.send(`${line}\r\n`);
    const r = await w.line();
    assert.match(r, want, `reaching ${state}: ${line} → ${r}`);
  };
  assert.match(await w.line(), /^\+OK /, `greeting (${state})`);
  if (state === 'stls' || state === 'stls-transaction') {
    await step('STLS', /^\+OK/);
    await w.upgrade();
  }
  if (state === 'user') await step(`USER nobody${++n}@${DOMAIN}`, /^\+OK/);
  if (state === 'sasl') await step('AUTH PLAIN', /^\+ /);
  if (TX_STATES.includes(state)) {
    const box = BOXES[boxTurn++ % BOXES.length] ?? 'pop1';
    for (let tries = 0; ; tries++) {
      w.send(`USER ${box}@${DOMAIN}\r\nPASS ${PASSWORD}\r\n`);
      assert.match(await w.line(), /^\+OK/);
      const r = await w.line();
      if (r.startsWith(`+OK ${MESSAGES} messages`)) break;
      assert.ok(tries < 40 && r.includes('[IN-USE]'), `login to ${box}: ${r}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    if (state === 'marked') await step('DELE 1', /^\+OK/);
  }
  return w;
}

const VERBS: ReadonlyArray<readonly [string, string]> = [
  ['USER', `pop1@${DOMAIN}`],
  ['PASS', 'wrong-password'],
  ['APOP', `pop1@${DOMAIN} c4c9334bac560ecc979e58001b3e22fb`],
  ['STAT', ''],
  ['LIST', '1'],
  ['UIDL', '1'],
  ['RETR', '1'],
  ['TOP', '1 0'],
  ['DELE', '1'],
  ['NOOP', ''],
  ['RSET', ''],
  ['QUIT', ''],
  ['CAPA', ''],
  ['STLS', ''],
  ['AUTH', 'PLAIN'],
  ['LAST', ''],
  ['XTND', 'XMIT'],
  ['\x01\x7f', 'x'],
];

/** Arguments: none, the normal one, 0, -1, huge, non-numeric, too many, odd spacing, overlong, NUL, bare CR, 8-bit, LF-only. */
const VARIANTS: readonly Variant[] = [
  ['none', (v) => v],
  ['normal', (v, a) => `${v} ${a}`],
  ['zero', (v) => `${v} 0`],
  ['negative', (v) => `${v} -1 -5`],
  ['huge', (v) => `${v} 99999999999999999999 4294967297`],
  ['non-numeric', (v) => `${v} abc 1x`],
  ['many', (v) => `${v} 1 2 3 4 5 6 7 8 9`],
  ['spacing', (v, a) => `${v}   ${a}\t `],
  ['overlong', (v) => `${v} ${'9'.repeat(2000)}`],
  ['nul', (v, a) => `${v} ${a}\0`],
  ['bare-cr', (v) => `${v} 1\r2`],
  ['8bit', (v) => `${v} \xff\xfe\xe9`],
  ['lf-only', (v, a) => `${v.toLowerCase()} ${a}\n`],
];

/** Whether a +OK answer to `line` has a multi-line body (the server's own parse: keyword, then space-split arguments). */
function multiline(line: string, authorization: boolean): boolean {
  const text = line.replace(/\r?\n$/, '').replace(/\r$/, '');
  const sp = text.indexOf(' ');
  const verb = (sp < 0 ? text : text.slice(0, sp)).toUpperCase();
  const args =
    sp < 0
      ? []
      : text
          .slice(sp + 1)
          .split(' ')
          .filter((a) => a !== '');
  if (verb === 'CAPA') return true;
  if (authorization) return verb === 'AUTH' && args.length === 0;
  return verb === 'RETR' || verb === 'TOP' || ((verb === 'LIST' || verb === 'UIDL') && args.length === 0);
}

/** Sends one command and reads its whole answer; 'closed' when the server hung up (it must have said why first). */
async function exchange(w: Wire, line: string, state: State, what: string): Promise<'open' | 'closed'> {
  w.send(asLine(line));
  let r = await w.line(30_000);
  assert.notEqual(r, 'timeout', `${what}: no answer within 30 s (a hang)`);
  if (r === 'closed') return 'closed';
  assertStatus(r, what);
  if (r.startsWith('+ ')) {
    w.send('*\r\n');
    r = await w.line();
    if (r === 'closed') return 'closed';
    assertStatus(r, what);
  }
  if (r.startsWith('+OK') && state !== 'sasl' && multiline(line, AUTH_STATES.includes(state))) {
    const body = await w.multiline(30_000);
    assert.ok(body !== 'closed' && body !== 'timeout', `${what}: the multi-line answer did not end (${body})`);
  }
  if (r.startsWith('+OK begin TLS')) await w.upgrade();
  return w.closed ? 'closed' : 'open';
}

async function quit(w: Wire, what: string): Promise<void> {
  if (w.closed) return;
  w.send('QUIT\r\n');
  const r = await w.line();
  if (r !== 'closed') assertStatus(r, `${what} QUIT`);
  assert.ok(await w.closes(), `${what}: still open after QUIT`);
}

/** One variant at a time: a connection per variant in AUTHORIZATION, one login for all in TRANSACTION (restored). */
async function oneByOne(state: State, verb: string, arg: string): Promise<void> {
  const what = (variant: string): string => `${state} ${JSON.stringify(verb)} ${variant}`;
  if (AUTH_STATES.includes(state)) {
    // a login attempt, STLS or SASL changes the state
    await parallel(VARIANTS, 6, async ([variant, make]) => {
      const w = await reach(state);
      try {
        if ((await exchange(w, make(verb, arg), state, what(variant))) === 'open') await quit(w, what(variant));
      } finally {
        w.destroy();
      }
    });
    return;
  }
  // a password check per connection is the expensive part: one login, the state restored after each variant
  let w: Wire | undefined;
  try {
    for (const [variant, make] of VARIANTS) {
      w = w === undefined || w.closed ? await reach(state) : w;
      if ((await exchange(w, make(verb, arg), state, what(variant))) === 'closed') continue;
      w.send(state === 'marked' ? 'RSET\r\nDELE 1\r\n' : 'RSET\r\n');
      for (const _ of state === 'marked' ? [1, 2] : [1]) {
        const r = await w.line();
        if (r !== 'closed') assertStatus(r, `${what(variant)} then RSET`);
      }
    }
    if (state === 'marked' && w && !w.closed) {
      w.send('RSET\r\n');
      await w.line();
    }
    if (w) await quit(w, what('end'));
  } finally {
    w?.destroy();
  }
}

/** All variants pipelined in one burst, then RSET, QUIT and FIN: the session ends, its status lines are clean. */
async function pipelined(state: State, verb: string, arg: string): Promise<void> {
  const what = `${state} ${JSON.stringify(verb)} burst`;
  const w = await reach(state);
  try {
    // status lines only (message bodies are the test's own text), up to a STLS handshake (binary may follow)
    const text = await burst(w, VARIANTS, verb, arg, 'RSET\r\nQUIT\r\n', /^\+OK begin TLS/m, what);
    for (const line of text.split('\r\n').filter((l) => /^(?:\+OK|-ERR)/.test(l))) assertNoLeak(line, what);
  } finally {
    w.destroy();
  }
}

void test('every POP3 command in AUTHORIZATION and TRANSACTION, plain, STLS and implicit TLS, with hostile arguments, one by one and pipelined', () =>
  h.guard(async () => {
    for (const state of [...AUTH_STATES, ...TX_STATES]) {
      for (const [verb, arg] of VERBS) {
        if (state === 'marked' && verb === 'QUIT') continue; // that QUIT would delete for real (pop3d's own tests cover it)
        await Promise.all([oneByOne(state, verb, arg), pipelined(state, verb, arg)]);
        await h.health(`POP3 ${state} ${JSON.stringify(verb)}`);
      }
    }
  }));

void test('POP3 lines of 1 byte to 10 MB: commands, USER, PASS and SASL responses, with and without LF', () =>
  h.guard(async () => {
    for (const size of SIZES) {
      const what = `${size}-byte`;
      for (const [state, line] of [
        ['greeting', 'x'.repeat(size)],
        ['greeting', `USER ${'u'.repeat(size)}`],
        ['user', `PASS ${'p'.repeat(size)}`],
        ['sasl', 'QUFB'.repeat(Math.ceil(size / 4)).slice(0, size)],
        ['transaction', `LIST ${'9'.repeat(size)}`],
        ['transaction', `TOP 1 ${'9'.repeat(size)}`],
      ] as const) {
        const w = await reach(state);
        try {
          if ((await exchange(w, line, state, `${what} line in ${state}`)) === 'open')
            await quit(w, `${what} line in ${state}`);
        } finally {
          w.destroy();
        }
      }
      for (const how of ['fin', 'rst'] as const) {
        for (const state of ['greeting', 'transaction'] as const) {
          const w = await reach(state);
          await w.write(`NOOP ${'n'.repeat(size)}`);
          if (how === 'rst') w.reset();
          else {
            w.end();
            assert.ok(await w.closes(), `${what} without LF in ${state}, then FIN: the server keeps the connection`);
          }
          w.destroy();
        }
      }
      await h.health(`POP3 ${what} lines`);
    }
  }));

type Cut = 'half' | 'no-lf' | 'cr' | 'whole';

void test('POP3 disconnects (FIN and RST) in the middle of every command and of a RETR being sent', () =>
  h.guard(async () => {
    const commands: ReadonlyArray<readonly [State, string]> = [
      ['greeting', `USER pop1@${DOMAIN}`],
      ['user', `PASS ${PASSWORD}`],
      ['greeting', `AUTH PLAIN ${plain(`pop1@${DOMAIN}`, PASSWORD)}`],
      ['greeting', 'CAPA'],
      ['greeting', 'STLS'],
      ['sasl', plain(`pop1@${DOMAIN}`, PASSWORD)],
      ['transaction', 'STAT'],
      ['transaction', 'LIST'],
      ['transaction', 'UIDL'],
      ['transaction', 'RETR 3'],
      ['transaction', 'TOP 2 1'],
      ['transaction', 'DELE 1'],
      ['marked', 'NOOP'],
      ['marked', 'RSET'],
      ['transaction', 'QUIT'],
      ['pop3s-transaction', 'RETR 3'],
      ['stls-transaction', 'DELE 2'],
    ];
    const cuts: readonly Cut[] = ['half', 'no-lf', 'cr', 'whole'];
    for (const [state, command] of commands) {
      await parallel(
        cuts.flatMap((cut) => (['fin', 'rst'] as const).map((how) => [cut, how] as const)),
        BOXES.length,
        async ([cut, how]) => {
          const what = `${state} ${command.slice(0, 20)} cut ${cut} ${how}`;
          const w = await reach(state);
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
          }
          w.destroy();
        },
      );
      await h.health(`POP3 cut ${state} ${command.slice(0, 20)}`);
    }
    // a client that stops reading a 200 KB RETR, then resets or closes
    for (const how of ['fin', 'rst'] as const) {
      const w = await reach('transaction');
      w.send('RETR 3\r\nRETR 3\r\nRETR 3\r\n');
      assert.match(await w.line(), /^\+OK/);
      if (how === 'rst') w.reset();
      else {
        w.end();
        assert.ok(await w.closes(30_000), 'FIN in the middle of a RETR: the server keeps the connection');
      }
      w.destroy();
      await h.health(`POP3 RETR cut by ${how}`);
    }
  }));

const TLS_CASES: ReadonlyArray<readonly [string, () => Promise<Wire>]> = [
  [
    'plain text after +OK begin TLS',
    async () => {
      const w = await stls();
      w.send(`USER pop1@${DOMAIN}\r\nPASS ${PASSWORD}\r\n`);
      return w;
    },
  ],
  [
    'random bytes after +OK begin TLS',
    async () => {
      const w = await stls();
      w.send(tlsGarbage(4096));
      return w;
    },
  ],
  ...(['fin', 'rst'] as const).flatMap((how) =>
    (['stls', 'pop3s'] as const).flatMap((port) =>
      ([0, 5, 'half', 'all'] as const).map(
        (cut) =>
          [
            `${port}: ClientHello cut at ${cut}, then ${how}`,
            async () => {
              const w =
                port === 'stls' ? await stls() : await Wire.connect(h.ports.pop3s, { localAddress: freshLoopback() });
              await w.write(
                hello.subarray(0, cut === 'half' ? Math.floor(hello.length / 2) : cut === 'all' ? hello.length : cut),
              );
              if (how === 'rst') w.reset();
              else w.end();
              return w;
            },
          ] as const,
      ),
    ),
  ),
  [
    'pop3s: plain POP3 on the TLS port',
    async () => {
      const w = await Wire.connect(h.ports.pop3s, { localAddress: freshLoopback() });
      w.send(`CAPA\r\nUSER pop1@${DOMAIN}\r\n`);
      return w;
    },
  ],
  [
    'pop3s: random bytes',
    async () => {
      const w = await Wire.connect(h.ports.pop3s, { localAddress: freshLoopback() });
      w.send(tlsGarbage(4096));
      return w;
    },
  ],
  [
    'STLS command injection (a pipelined USER is dropped)',
    async () => {
      const w = await Wire.connect(h.ports.pop3, { localAddress: freshLoopback() });
      assert.match(await w.line(), /^\+OK/);
      w.send(`STLS\r\nUSER pop1@${DOMAIN}\r\n`);
      assert.match(await w.line(), /^\+OK begin TLS/);
      await w.upgrade();
      w.send(`PASS ${PASSWORD}\r\n`);
      assert.match(await w.line(), /^-ERR/, 'PASS after STLS used a USER sent before the handshake');
      w.send('QUIT\r\n');
      return w;
    },
  ],
  [
    'a forged record after the handshake (STLS)',
    async () => {
      const w = await reach('stls-transaction');
      w.rawWrite(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x40]), randomBytes(64)]));
      return w;
    },
  ],
  [
    'a forged record after the handshake (pop3s)',
    async () => {
      const w = await reach('pop3s');
      w.rawWrite(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x40]), randomBytes(64)]));
      return w;
    },
  ],
  [
    'TCP FIN without close_notify in mid-RETR (pop3s)',
    async () => {
      const w = await reach('pop3s-transaction');
      w.send('RETR 3\r\n');
      assert.match(await w.line(), /^\+OK/);
      w.rawEnd();
      return w;
    },
  ],
];

async function stls(): Promise<Wire> {
  const w = await Wire.connect(h.ports.pop3, { localAddress: freshLoopback() });
  assert.match(await w.line(), /^\+OK/);
  w.send('STLS\r\n');
  assert.match(await w.line(), /^\+OK begin TLS/);
  return w;
}

void test('POP3 TLS: garbage, half handshakes, FIN and RST after STLS and on the implicit-TLS port, forged records, STLS injection', () =>
  h.guard(async () => {
    for (const [what, run] of TLS_CASES) {
      const w = await run();
      try {
        assert.ok(await w.closes(10_000), `${what}: the server kept the connection open`);
        // the client still holds its end of the TCP connection here: the server must have closed its own
        await h.health(`POP3 TLS: ${what}`);
      } finally {
        w.destroy();
      }
    }
  }));

const SEED = Number(process.env['HOSTILE_SEED'] ?? 1212);
const RUNS = Number(process.env['HOSTILE_RUNS'] ?? 100);
const bytesArb = fc.uint8Array({ maxLength: 2048 }).map((b) => {
  let lf = 0;
  return Buffer.from(b.map((c) => (c === 10 && ++lf > 8 ? 0x78 : c)));
});

void test(`POP3 property (fast-check, seed ${SEED}, ${RUNS} runs): random bytes in every state, then QUIT, FIN or RST`, () =>
  h.guard(async () => {
    const where = fc.constantFrom<State | 'stls-handshake' | 'pop3s-handshake'>(
      'greeting',
      'user',
      'sasl',
      'transaction',
      'stls-transaction',
      'stls-handshake',
      'pop3s-handshake',
    );
    await fc.assert(
      fc.asyncProperty(where, bytesArb, fc.constantFrom('quit', 'fin', 'rst'), async (at, bytes, end) => {
        const what = `POP3 random ${bytes.length} bytes at ${at}, then ${end}`;
        const w =
          at === 'stls-handshake'
            ? await stls()
            : at === 'pop3s-handshake'
              ? await Wire.connect(h.ports.pop3s, { localAddress: freshLoopback() })
              : await reach(at);
        try {
          await w.write(bytes);
          if (end === 'rst') return void w.reset();
          if (end === 'quit') await w.write('\r\nRSET\r\nQUIT\r\n');
          w.end();
          assert.ok(
            await w.closes(20_000),
            `${what}: the server did not end the session within 20 s after the client's FIN`,
          );
          if (!at.endsWith('handshake')) {
            for (const line of w.received.split('\r\n').filter((l) => /^[+-]/.test(l))) assertNoLeak(line, what);
          }
        } finally {
          w.destroy();
          await h.health(what);
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }));

void test('a POP3 session open through all the cases above is unaffected: it still reads its mailbox', () =>
  h.guard(async () => {
    assert.equal(bystander.closed, false, 'the bystander POP3 session was closed by a case');
    bystander.send(`STAT\r\nRETR ${bigMessage}\r\n`);
    assert.match(await bystander.line(), /^\+OK 2 /, 'STAT: one message marked deleted before the cases, 2 left');
    assert.match(await bystander.line(), /^\+OK \d+ octets/);
    const body = await bystander.multiline();
    assert.equal((body.match(/0123456789abcdef\r\n/g) ?? []).length, 11_000, 'the 200 KB message arrives whole');
    bystander.send('RSET\r\nQUIT\r\n');
    assert.match(await bystander.line(), /^\+OK/);
    assert.match(await bystander.line(), /^\+OK .*\(0 messages deleted\)/);
    assert.ok(await bystander.closes());
    h.release(bystander);
    bystander.destroy();
    await h.health('the POP3 bystander');
  }));
