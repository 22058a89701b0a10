// Issue 12's battery for the ODMR listener (RFC 2645): random bytes, huge and cut lines, AUTH garbage and cut AUTH
// exchanges, TLS garbage after STARTTLS, a flood of bad commands, a client that resets right after the reversal;
// password guessing, a mailbox that is no ATRN login, connection limits, idle=, forged records and renegotiation.
// tier: system (needs quail start, swaks)
// After every case the same odmrd process serves (no odmrd.crashed, one odmrd.started), a fresh session gets its
// banner, and no held message is lost.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { clientHello, freshLoopback, Wire } from '../../test/support/hostile-wire.js';
import { serverEndsAfterForgedRecord } from '../../test/support/tls-forge.js';
import {
  freePort,
  listenerPort,
  quail,
  setupRoot,
  startProcess,
  swaks,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

const DOMAIN = 'held.hostile.test';
const SECRET = 'hostile-cram-secret';
let root: string;
let port: number;
/** A second odmr listener, with idle=2. */
let idlePort: number;
let q: QuailProcess;
const held = (): number => readdirSync(join(root, 'held', DOMAIN, 'Maildir', 'new')).length;
const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'quail-hostile-odmr-'));
  setupRoot(root, 'isp.test', []);
  quail(['domain', 'add', 'isp.test', '--root', root]);
  quail(['user', 'add', 'cust@isp.test', '--password', 'cust-password', '--root', root]);
  const secret = join(root, 'secret');
  writeFileSync(secret, `${SECRET}\n`);
  quail(['held', 'add', DOMAIN, '--root', root, '--host', '127.0.0.1:9', '--every', '1h', '--atrn', 'cust@isp.test']);
  quail([
    'held',
    'add',
    DOMAIN,
    '--root',
    root,
    '--host',
    '127.0.0.1:9',
    '--every',
    '1h',
    '--atrn',
    'cust@isp.test',
    '--atrn-secret-file',
    secret,
    '--replace',
  ]);
  // a second ATRN login, for the guessing case (its failures slow down that login only), and a mailbox that is none
  quail(['user', 'add', 'guess@isp.test', '--password', 'guess-password', '--root', root]);
  quail(['user', 'add', 'other@isp.test', '--password', 'other-password', '--root', root]);
  const guess = ['--root', root, '--host', '127.0.0.1:9', '--every', '1h', '--atrn', 'guess@isp.test'];
  quail(['held', 'add', 'guess.hostile.test', ...guess]);
  port = await freePort();
  do idlePort = await freePort();
  while (idlePort === port);
  writeFileSync(
    join(root, 'control', 'listeners'),
    `127.0.0.1:${port} odmr maxconn=12\n127.0.0.1:${idlePort} odmr idle=2\n`,
  );
  writeFileSync(join(root, 'control', 'heldinterval'), '3600\n');
  q = await startProcess(root);
  const smtp = listenerPort(root, 'smtp');
  for (const who of ['one', 'two']) assert.equal(swaks(smtp, ['--to', `${who}@${DOMAIN}`]).status, 0);
  await waitFor(() => held() === 2, 20_000, q.log);
});

after(async () => {
  q.killGroup();
  await q.exited;
});

/** The same odmrd serves, a fresh session is greeted, nothing held was lost. */
async function stillServing(what: string): Promise<void> {
  const w = await Wire.connect(port);
  assert.equal(await w.code(), 220, `after ${what}: no banner`);
  w.send('QUIT\r\n');
  assert.equal(await w.code(), 221, `after ${what}`);
  w.destroy();
  assert.doesNotMatch(q.log(), /odmrd\.crashed/, `after ${what}`);
  assert.equal(q.log().match(/odmrd\.started/g)?.length, 1, `after ${what}: the ODMR process was replaced`);
  assert.equal(held(), 2, `after ${what}: a held message went missing`);
}

async function authed(): Promise<Wire> {
  const w = await Wire.connect(port);
  assert.equal(await w.code(), 220);
  w.send('EHLO hostile.test\r\n');
  assert.equal(await w.code(), 250);
  w.send(`AUTH PLAIN ${b64('\0cust@isp.test\0cust-password')}\r\n`);
  assert.equal(await w.code(), 235);
  return w;
}

void test('random bytes, with and without a line end, then FIN or RST', async () => {
  for (const size of [1, 100, 4096, 65_536, 1 << 20]) {
    for (const how of ['end', 'reset'] as const) {
      const w = await Wire.connect(port);
      await w.code();
      w.rawWrite(randomBytes(size));
      w.rawWrite(Buffer.from(size % 2 === 0 ? '\r\n' : ''));
      if (how === 'end') w.end();
      else w.reset();
      w.destroy();
    }
    await stillServing(`random ${size}`);
  }
});

void test('lines past the limit get 500 and the session goes on; a 10 MB line does not grow memory without end', async () => {
  const w = await Wire.connect(port);
  assert.equal(await w.code(), 220);
  w.send(`EHLO ${'x'.repeat(5000)}\r\n`);
  assert.equal(await w.code(), 500);
  await w.write(Buffer.alloc(10 << 20, 0x61));
  w.send('\r\nNOOP\r\n');
  assert.deepEqual([await w.code(), await w.code()], [500, 250], 'one 500 for the long line, then NOOP');
  w.destroy();
  await stillServing('long lines');
});

void test('AUTH garbage (each refused with its code, under the 10-error limit): bad base64, empty, cancelled, unknown mechanism, a CRAM answer of junk, cut exchanges', async () => {
  const w = await Wire.connect(port);
  assert.equal(await w.code(), 220);
  w.send('EHLO hostile.test\r\n');
  assert.equal(await w.code(), 250);
  w.send('ATRN\r\n');
  assert.equal(await w.code(), 530);
  for (const [cmd, more, want] of [
    ['AUTH PLAIN !!!notbase64', '', 501],
    ['AUTH PLAIN', '*', 501],
    ['AUTH LOGIN', '*', 501],
    ['AUTH CRAM-MD5', b64('cust@isp.test nothex'), 535],
    ['AUTH CRAM-MD5', b64('x'.repeat(3000)), 501],
    ['AUTH CRAM-MD5', '=', 501],
    ['AUTH X-UNKNOWN', '', 504],
    [`AUTH PLAIN ${b64('\0\0')}`, '', 535],
  ] as const) {
    w.send(`${cmd}\r\n`);
    let c = await w.code();
    if (c === 334) {
      w.send(`${more}\r\n`);
      c = await w.code();
    }
    assert.equal(c, want, cmd);
  }
  w.destroy();
  for (const mech of ['LOGIN', 'CRAM-MD5', 'PLAIN']) {
    const c = await Wire.connect(port);
    await c.code();
    c.send(`EHLO x\r\nAUTH ${mech}\r\n`);
    await c.code();
    await c.code();
    c.end(); // gone in the middle of the exchange
    c.destroy();
  }
  await stillServing('AUTH garbage');
});

void test('STARTTLS then TLS garbage, a half handshake, or nothing', async () => {
  const hello = await clientHello();
  for (const bytes of [randomBytes(300), hello.subarray(0, 20), Buffer.alloc(0)]) {
    const w = await Wire.connect(port);
    await w.code();
    w.send('EHLO x\r\n');
    await w.code();
    w.send('STARTTLS\r\n');
    const c = await w.code();
    if (c === 220) w.rawWrite(bytes);
    w.end();
    w.destroy();
  }
  await stillServing('TLS garbage');
});

void test('a flood of bad commands ends in 421; a reset right after the reversal loses nothing', async () => {
  const w = await Wire.connect(port);
  await w.code();
  for (let i = 0; i < 12; i++) w.send(`BOGUS ${i}\r\n`);
  let last = 0;
  for (let i = 0; i < 10; i++) last = await w.code();
  assert.equal(last, 421);
  assert.ok(await w.closes());
  w.destroy();
  const a = await authed();
  a.send(`ATRN ${DOMAIN}\r\n`);
  assert.equal(await a.code(), 250);
  a.reset(); // the customer vanishes where its greeting should come
  a.destroy();
  await waitFor(() => /odmr\.atrn .*result=stopped/.test(q.log()), 20_000, q.log);
  await stillServing('reset after the reversal');
});

/** A session from `from` (default: an address of its own, so its throttle and its count are its own), after EHLO. */
async function session(from = freshLoopback()): Promise<Wire> {
  const w = await Wire.connect(port, { localAddress: from });
  assert.equal(await w.code(), 220);
  w.send('EHLO hostile.test\r\n');
  assert.equal(await w.code(), 250);
  return w;
}

const count = (re: RegExp): number => q.log().match(re)?.length ?? 0;

void test('password guessing: each failed AUTH slows the next (per address and per login, as SMTP AUTH), the third ends the session, each is logged with its login made safe', async () => {
  const w = await session();
  const codes: number[] = [];
  const took: number[] = [];
  for (const pw of ['guess-1', 'guess-2', 'guess-3']) {
    const t = Date.now();
    w.send(`AUTH PLAIN ${b64(`\0guess@isp.test\0${pw}`)}\r\n`);
    codes.push(await w.code());
    took.push(Date.now() - t);
  }
  assert.deepEqual(codes, [535, 535, 421], 'three wrong passwords: 535, 535, then 421 and the end');
  assert.ok(await w.closes(), 'the session stays open after the third failure');
  w.destroy();
  assert.ok((took[1] ?? 0) >= 900 && (took[2] ?? 0) >= 1900, `no slowdown after a failure: ${took.join(' ')} ms`);
  // the login's failures follow it to another address: even the right password waits (4 s) for its 235
  const t = Date.now();
  const right = await session();
  right.send(`AUTH PLAIN ${b64('\0guess@isp.test\0guess-password')}\r\n`);
  assert.equal(await right.code(), 235);
  assert.ok(Date.now() - t >= 3900, `the right password after three failures took only ${Date.now() - t} ms`);
  right.destroy();
  // a login with control characters is logged made safe (logsafe: newline as /, ESC as _), never as typed
  const odd = await session();
  odd.send(`AUTH PLAIN ${b64('\0ev\x1bil\nx@isp.test\0pw')}\r\n`);
  assert.equal(await odd.code(), 535);
  odd.destroy();
  await waitFor(() => q.log().includes('login=ev_il/x@isp.test mechanism=plain result=refused'), 10_000, q.log);
  assert.equal(count(/odmr\.auth ip=\S+ login=guess@isp\.test mechanism=plain result=refused/g), 3, q.log());
  assert.equal(count(/odmr\.auth ip=\S+ login=guess@isp\.test mechanism=plain result=ok/g), 1, q.log());
  assert.ok(!q.log().includes('\x1b'), 'an ESC from the client reached the log');
  await stillServing('password guessing');
});

void test('a mailbox that is the ATRN login of no held domain: its right password gets the reply a wrong one gets', async () => {
  const w = await session();
  w.send(`AUTH PLAIN ${b64('\0other@isp.test\0other-password')}\r\n`);
  const right = await w.reply();
  w.send(`AUTH PLAIN ${b64('\0other@isp.test\0wrong-password')}\r\n`);
  const wrong = await w.reply();
  assert.match(right, /^535 /);
  assert.equal(right, wrong, 'the right and the wrong password of a mailbox that is no ATRN login are told apart');
  w.send('ATRN\r\n');
  assert.equal(await w.code(), 530, 'not authenticated');
  w.destroy();
  await waitFor(
    () => count(/odmr\.auth ip=\S+ login=other@isp\.test mechanism=plain result=not-atrn/g) === 1,
    10_000,
    q.log,
  );
  await stillServing('a mailbox that is no ATRN login');
});

void test('connection limits: past maxperip (5 by default) and maxconn (12 here) a client gets 421 and is logged; a freed slot serves again', async () => {
  const from = freshLoopback();
  const open: Wire[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const w = await Wire.connect(port, { localAddress: from });
      assert.equal(await w.code(), 220, `connection ${i + 1} from one address`);
      open.push(w);
    }
    const sixth = await Wire.connect(port, { localAddress: from });
    assert.match(await sixth.reply(), /^421 4\.7\.0 too many connections from your address/);
    assert.ok(await sixth.closes(), 'refused, and still open');
    sixth.destroy();
    open.pop()?.destroy();
    await waitFor(
      async () => {
        const w = await Wire.connect(port, { localAddress: from });
        if ((await w.code()) === 220) {
          open.push(w);
          return true;
        }
        w.destroy();
        return false;
      },
      10_000,
      q.log,
    );
    let greeted = 0;
    let refused = 0;
    for (let i = 0; i < 10; i++) {
      const w = await Wire.connect(port, { localAddress: freshLoopback() });
      open.push(w);
      const r = await w.reply();
      if (r.startsWith('220 ')) greeted++;
      else if (/^421 4\.7\.0 too many connections, try again later/.test(r)) refused++;
      else assert.fail(`neither a greeting nor 421: ${r}`);
    }
    assert.ok(greeted <= 7 && refused >= 3, `maxconn=12 with 5 open: ${greeted} more greeted, ${refused} refused`);
    await waitFor(
      () => count(/odmr\.refused ip=\S+ why=maxperip/g) >= 1 && count(/odmr\.refused ip=\S+ why=maxconn/g) >= 3,
      10_000,
      q.log,
    );
  } finally {
    for (const w of open) w.destroy();
  }
  await waitFor(
    async () => {
      const w = await Wire.connect(port, { localAddress: freshLoopback() });
      const c = await w.code();
      w.destroy();
      return c === 220;
    },
    10_000,
    q.log,
  );
  await stillServing('connection limits');
});

void test('idle=2 on a listener: a silent session is ended with 421 after 2 s', async () => {
  const w = await Wire.connect(idlePort, { localAddress: freshLoopback() });
  assert.equal(await w.code(), 220);
  const t = Date.now();
  assert.match(await w.reply(15_000), /^421 4\.4\.2 /);
  const took = Date.now() - t;
  assert.ok(took >= 1500 && took < 10_000, `ended after ${took} ms`);
  w.destroy();
});

void test('after STARTTLS: a forged TLS record ends the session at once (not at its idle time)', async () => {
  assert.ok(await serverEndsAfterForgedRecord(port, 10_000), 'the server kept the connection after a forged record');
  await stillServing('a forged TLS record');
});

/** A session after STARTTLS (TLS 1.2, which can renegotiate) and a second EHLO. */
async function secured(): Promise<Wire> {
  const w = await session();
  w.send('STARTTLS\r\n');
  assert.equal(await w.code(), 220, 'STARTTLS (control/servercert.pem made by quail init)');
  await w.upgrade({ maxVersion: 'TLSv1.2' });
  w.send('EHLO hostile.test\r\n');
  assert.equal(await w.code(), 250);
  return w;
}

void test("after STARTTLS: renegotiation is cut off past Node's limit (tls.CLIENT_RENEG_LIMIT, 3), as on SMTP", async () => {
  const r = await secured();
  let renegotiated = 0;
  while (renegotiated < 10 && (await r.renegotiate())) renegotiated++;
  assert.ok(renegotiated <= 3, `${renegotiated} renegotiations in a row were let through`);
  assert.ok(r.closed || (await r.closes(10_000)), 'the session stays open after too many renegotiations');
  r.destroy();
  await stillServing('TLS renegotiation');
});
