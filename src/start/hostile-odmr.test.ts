// Issue 12's battery for the ODMR listener (RFC 2645): random bytes, huge and cut lines, AUTH garbage and cut AUTH
// exchanges, TLS garbage after STARTTLS, a flood of bad commands, a client that resets right after the reversal.
// tier: system (needs quail start, swaks)
// After every case the same odmrd process serves (no odmrd.crashed, one odmrd.started), a fresh session gets its
// banner, and no held message is lost.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { clientHello, Wire } from '../../test/support/hostile-wire.js';
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
  port = await freePort();
  writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:${port} odmr\n`);
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
