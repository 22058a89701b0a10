// The message file of a transaction (8-bit scan, its per-engine cache, the DATA bytes) and the cached interface addresses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { EightBitCache, MessageFile } from './message.js';
import { cachedLocalAddresses } from './mx.js';
import { RemoteEngine } from './index.js';
import { testSmtp, testWorld, unstuffed } from '../../test/support/testsmtp.js';

const LINE = `${'x'.repeat(71)}\n`;
/** A message of `lines` ASCII lines, with `extra` appended (a byte >= 0x80 where it is wanted). */
const message = (lines: number, extra = Buffer.alloc(0)): Buffer =>
  Buffer.concat([Buffer.from(`Subject: m\n\n${LINE.repeat(lines)}`), extra]);
const EIGHT = Buffer.from([0x63, 0x61, 0x66, 0xc3, 0xa9, 0x0a]); // "café\n" in UTF-8

/** DATA's bytes as body() gives them: the scan's buffer, or the file streamed. */
const bytesOf = async (b: Buffer | Readable): Promise<Buffer> => (Buffer.isBuffer(b) ? b : buffer(b));

async function scanned(path: string, cache?: EightBitCache): Promise<{ eightBit: boolean; body: Buffer }> {
  const m = await MessageFile.open(path);
  try {
    const eightBit = await m.eightBit(cache);
    return { eightBit, body: await bytesOf(m.body()) };
  } finally {
    await m.close();
  }
}

void test('the 8-bit scan finds a byte >= 0x80 anywhere (first chunk, past 64 KiB, last byte); DATA gets the exact bytes', async () => {
  const w = testWorld({});
  const cases: Array<{ name: string; bytes: Buffer; eightBit: boolean }> = [
    { name: 'empty', bytes: Buffer.alloc(0), eightBit: false },
    {
      name: 'small ASCII, DEL included',
      bytes: Buffer.concat([message(3), Buffer.from([0x7f, 0x0a])]),
      eightBit: false,
    },
    { name: 'small 8-bit', bytes: message(3, EIGHT), eightBit: true },
    {
      name: 'exactly 64 KiB ASCII',
      bytes: Buffer.concat([Buffer.alloc(65535, 0x61), Buffer.from('\n')]),
      eightBit: false,
    },
    { name: '200 KiB ASCII', bytes: message(2900), eightBit: false },
    { name: '200 KiB, 8-bit in the last line', bytes: message(2900, EIGHT), eightBit: true },
    { name: '8-bit first, then 200 KiB', bytes: Buffer.concat([EIGHT, message(2900)]), eightBit: true },
  ];
  for (const c of cases) {
    writeFileSync(w.msg, c.bytes);
    const r = await scanned(w.msg);
    assert.equal(r.eightBit, c.eightBit, c.name);
    assert.ok(r.body.equals(c.bytes), `${c.name}: DATA bytes`);
    // DATA without a scan (a server without 8BITMIME) reads the file itself.
    const m = await MessageFile.open(w.msg);
    assert.equal(m.size, c.bytes.length);
    assert.ok((await bytesOf(m.body())).equals(c.bytes), `${c.name}: DATA bytes, no scan`);
    await m.close();
  }
  rmSync(w.root, { recursive: true });
});

void test('a message file leaves no descriptor open: read whole at open (small) or through a handle closed by close() (large)', async () => {
  const w = testWorld({});
  const fds = (): number => readdirSync('/proc/self/fd').length;
  for (const bytes of [message(3), message(2900, EIGHT)]) {
    writeFileSync(w.msg, bytes);
    const before = fds();
    for (let i = 0; i < 20; i++) {
      const r = await scanned(w.msg);
      assert.ok(r.body.equals(bytes));
    }
    assert.equal(fds(), before, `${bytes.length} bytes: descriptors left open`);
  }
  // a small message needs no descriptor between its open and its close: it was read whole
  writeFileSync(w.msg, message(3));
  const before = fds();
  const m = await MessageFile.open(w.msg);
  assert.equal(fds(), before, 'a small message holds no descriptor');
  assert.ok(Buffer.isBuffer(m.body()));
  await m.close();
  rmSync(w.root, { recursive: true });
});

void test('the scan cache answers for an unchanged file and sees a rewritten or replaced one', async () => {
  const w = testWorld({}, message(3));
  const cache = new EightBitCache();
  assert.equal((await scanned(w.msg, cache)).eightBit, false);
  assert.equal((await scanned(w.msg, cache)).eightBit, false);
  assert.equal(cache.size, 1, 'one entry for one unchanged file');

  writeFileSync(w.msg, message(3, EIGHT)); // rewritten in place
  assert.equal((await scanned(w.msg, cache)).eightBit, true);

  writeFileSync(`${w.msg}.new`, message(4));
  renameSync(`${w.msg}.new`, w.msg); // replaced: another inode
  assert.equal((await scanned(w.msg, cache)).eightBit, false);

  const small = new EightBitCache(2);
  for (const k of ['a', 'b', 'c']) small.set(k, true);
  assert.equal(small.size, 2);
  assert.equal(small.get('a'), undefined, 'the least recently used one went');
  assert.equal(small.get('c'), true);
  rmSync(w.root, { recursive: true });
});

void test('RemoteEngine: BODY=8BITMIME follows the message file as it is now; a missing file defers (#4.3.0)', async () => {
  const srv = await testSmtp('127.0.0.3', { ehlo: ['PIPELINING', '8BITMIME'] });
  const w = testWorld({ smtproutes: `:127.0.0.3:${srv.port}\n` }, message(3));
  const engine = new RemoteEngine({ root: w.root, control: w.control, idleMs: 50 });
  const send = (recipient: string): ReturnType<RemoteEngine['deliver']> =>
    engine.deliver({ recipient, sender: 'a@relay.test', messagePath: w.msg });
  try {
    assert.equal((await send('one@x.test')).result, 'success');
    writeFileSync(w.msg, message(3, EIGHT));
    assert.equal((await send('two@y.test')).result, 'success');
    assert.deepEqual(
      srv.lines.filter((l) => l.startsWith('MAIL')),
      ['MAIL FROM:<a@relay.test>', 'MAIL FROM:<a@relay.test> BODY=8BITMIME'],
    );
    assert.ok(unstuffed(srv.messages[1]?.raw ?? '').equals(readFileSync(w.msg)));
    rmSync(w.msg);
    assert.deepEqual(await send('three@z.test'), { result: 'deferral', report: 'Unable to read message. (#4.3.0)\n' });
  } finally {
    engine.close();
    await srv.close();
    rmSync(w.root, { recursive: true });
  }
});

void test('RemoteEngine: deliveries that start in one turn share one snapshot of control/; the next turn takes another and sees a change', async () => {
  const srv = await testSmtp('127.0.0.3', { ehlo: ['PIPELINING'] });
  const w = testWorld({ smtproutes: `:127.0.0.3:${srv.port}\n` }, message(3));
  let snapshots = 0;
  const engine = new RemoteEngine({
    root: w.root,
    control: () => {
      snapshots++;
      return w.control();
    },
    idleMs: 50,
  });
  const send = (recipient: string, messagePath = w.msg): ReturnType<RemoteEngine['deliver']> =>
    engine.deliver({ recipient, sender: 'a@relay.test', messagePath });
  try {
    const others = ['b', 'c'].map((n) => {
      const path = `${w.msg}.${n}`;
      writeFileSync(path, message(2));
      return path;
    });
    snapshots = 0; // the constructor's own look (concurrencyremotehost)
    const rs = await Promise.all([send('one@x.test'), send('two@x.test', others[0]), send('three@y.test', others[1])]);
    assert.deepEqual(
      rs.map((r) => r.result),
      ['success', 'success', 'success'],
    );
    assert.equal(snapshots, 1, 'three deliveries begun in one turn: one snapshot');
    // smtproutes now names a port where nothing listens: the next turn's delivery sees it
    const closed = await testSmtp('127.0.0.3');
    await closed.close();
    writeFileSync(join(w.root, 'control', 'smtproutes'), `:127.0.0.3:${closed.port}\n`);
    const r = await send('four@x.test');
    assert.equal(r.result, 'deferral', r.report);
    assert.match(r.report, /establish an SMTP connection/);
    assert.equal(snapshots, 2);
  } finally {
    engine.close();
    await srv.close();
    rmSync(w.root, { recursive: true });
  }
});

void test('cachedLocalAddresses asks the system again only after its lifetime (or when the clock went back)', () => {
  let now = 1_000_000;
  const ipme = cachedLocalAddresses(10_000, () => now);
  const first = ipme();
  assert.ok(first.has('127.0.0.1') && first.has('0.0.0.0'));
  now += 9_999;
  assert.equal(ipme(), first, 'within 10 s: the same set');
  now += 1;
  const second = ipme();
  assert.notEqual(second, first, 'after 10 s: read again');
  now -= 60_000;
  assert.notEqual(ipme(), second, 'the clock went back: read again');
});
