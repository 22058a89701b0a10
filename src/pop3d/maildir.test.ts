// The Maildir mailbox on its own: streaming in bounded chunks, snapshot semantics, lock release, commit results.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MaildirStore } from './index.js';
import { makeMaildir, putMessage } from '../../test/support/pop3d.js';

void test('RETR of a 24 MB message is read in bounded chunks, never whole', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-pop3m-'));
  try {
    const md = makeMaildir(join(dir, 'Maildir'));
    const line = Buffer.from(`${'b'.repeat(1023)}\n`);
    const path = join(md, 'new', '1.big.host');
    writeFileSync(path, Buffer.concat([Buffer.from('Subject: big\n\n'), ...Array<Buffer>(24 * 1024).fill(line)]));
    const store = new MaildirStore();
    const opened = await store.open({ login: 'joe@x', maildir: md });
    assert.equal(opened.kind, 'ok');
    if (opened.kind !== 'ok') return;
    const [m] = opened.mailbox.list();
    assert.equal(m?.size, 14 + 2 + 24 * 1024 * 1025);
    let total = 0;
    let largest = 0;
    let chunks = 0;
    const body = await opened.mailbox.retrieve(1);
    assert.equal(opened.mailbox.readStored(1), undefined, 'a large message is streamed, never read whole');
    for await (const c of body) {
      const b = c as Buffer;
      total += b.length;
      largest = Math.max(largest, b.length);
      chunks++;
    }
    assert.equal(total, m?.size);
    assert.ok(largest <= 2 * 64 * 1024 + 2, `largest chunk ${largest}`);
    assert.ok(chunks >= (24 * 1024 * 1024) / (128 * 1024), `${chunks} chunks`);
    opened.mailbox.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('one open per mailbox until close; a vanished message fails before anything is sent; commit counts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-pop3m-'));
  try {
    const md = makeMaildir(join(dir, 'Maildir'));
    putMessage(md, 'a\n', { name: '1.a', cur: true });
    putMessage(md, 'b\n', { name: '2.b', cur: true });
    putMessage(md, 'c\n', { name: '.hidden', cur: true });
    const store = new MaildirStore();
    const account = { login: 'joe@x', maildir: md };
    const first = await store.open(account);
    assert.equal(first.kind, 'ok');
    assert.equal((await store.open(account)).kind, 'in-use');
    if (first.kind !== 'ok') return;
    assert.deepEqual(
      first.mailbox.list().map((m) => m.uid),
      ['1.a', '2.b'],
      'dot files are not messages',
    );
    unlinkSync(join(md, 'cur', '2.b'));
    await assert.rejects(first.mailbox.retrieve(2));
    assert.deepEqual(await first.mailbox.commit([1, 2]), { deleted: 1, missing: 1 });
    first.mailbox.close();
    first.mailbox.close();
    const again = await store.open(account);
    assert.equal(again.kind, 'ok');
    if (again.kind === 'ok') again.mailbox.close();
    assert.deepEqual(readdirSync(join(md, 'cur')), ['.hidden']);
    const missing = await store.open({ login: 'x@x', maildir: join(dir, 'nope') });
    assert.equal(missing.kind, 'temporary');
    assert.equal((await store.open({ login: 'x@x', maildir: join(dir, 'nope') })).kind, 'temporary', 'not left locked');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('small messages whole: out-of-order RETR and TOP get the right message, in wire form', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-pop3m-'));
  try {
    const md = makeMaildir(join(dir, 'Maildir'));
    for (const i of [1, 2, 3, 4])
      putMessage(md, `Subject: m${i}\n\nbody ${i}\nline 2\n`, { name: `${i}.m${i}`, cur: true });
    const store = new MaildirStore();
    const opened = await store.open({ login: 'joe@x', maildir: md });
    assert.equal(opened.kind, 'ok');
    if (opened.kind !== 'ok') return;
    const text = async (n: number, top?: number): Promise<string> => {
      const stored = opened.mailbox.readStored(n);
      assert.ok(stored !== undefined, 'a small message is read whole');
      assert.equal(stored.toString('latin1'), `Subject: m${n}\n\nbody ${n}\nline 2\n`, 'as stored');
      const chunks: Buffer[] = [];
      for await (const c of await opened.mailbox.retrieve(n, top)) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('latin1');
    };
    assert.equal(await text(1), 'Subject: m1\r\n\r\nbody 1\r\nline 2\r\n');
    assert.equal(await text(3), 'Subject: m3\r\n\r\nbody 3\r\nline 2\r\n', 'not the next one (2)');
    assert.equal(await text(4, 0), 'Subject: m4\r\n\r\n', 'TOP');
    assert.equal(await text(2, 1), 'Subject: m2\r\n\r\nbody 2\r\n');
    assert.equal(await text(3), 'Subject: m3\r\n\r\nbody 3\r\nline 2\r\n');
    opened.mailbox.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('the listing of cur/ is kept while cur/ is unchanged and settled; any new, removed or renamed name is seen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-pop3m-'));
  try {
    const md = makeMaildir(join(dir, 'Maildir'));
    const cur = join(md, 'cur');
    putMessage(md, 'a\n', { name: '1.a:2,', cur: true });
    putMessage(md, 'b\n', { name: '2.b:2,', cur: true });
    // cur/ last changed 10 s ago: settled
    const settle = (): void => utimesSync(cur, new Date(Date.now() - 10_000), new Date(Date.now() - 10_000));
    settle();
    const store = new MaildirStore();
    // read through a function: assert.equal narrows a property it was given to the expected literal
    const scans = (): number => store.scans;
    const account = { login: 'joe@x', maildir: md };
    const uids = async (): Promise<string[]> => {
      const o = await store.open(account);
      assert.equal(o.kind, 'ok');
      if (o.kind !== 'ok') return [];
      const list = o.mailbox.list().map((m) => m.uid);
      o.mailbox.close();
      return list;
    };
    assert.deepEqual(await uids(), ['1.a', '2.b']);
    assert.equal(scans(), 1);
    assert.deepEqual(await uids(), ['1.a', '2.b']);
    assert.equal(scans(), 1, 'unchanged: given again without reading cur/');

    // delivered to new/: moved into cur/ at login, which changes cur/
    putMessage(md, 'c\n', { name: '3.c' });
    assert.deepEqual(await uids(), ['1.a', '2.b', '3.c']);
    assert.equal(scans(), 2);
    // cur/ changed just now: not kept, read again at the next login
    assert.deepEqual(await uids(), ['1.a', '2.b', '3.c']);
    assert.equal(scans(), 3, 'a listing of a directory changed under 2 s ago is not kept');

    settle();
    assert.deepEqual(await uids(), ['1.a', '2.b', '3.c']);
    assert.equal(scans(), 4);
    // a name removed, and one renamed (a flag), in cur/ directly
    unlinkSync(join(cur, '1.a:2,'));
    assert.deepEqual(await uids(), ['2.b', '3.c']);
    settle();
    await uids();
    const before = scans();
    renameSync(join(cur, '2.b:2,'), join(cur, '2.b:2,S'));
    assert.deepEqual(await uids(), ['2.b', '3.c']);
    assert.equal(scans(), before + 1, 'a rename in cur/ is a change');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('a symbolic link in cur/ is not a message; a FIFO or a link put in place of a message is never waited on or followed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-pop3m-'));
  try {
    const md = makeMaildir(join(dir, 'Maildir'));
    const secret = join(dir, 'secret.pem');
    writeFileSync(secret, '-----BEGIN PRIVATE KEY-----\n');
    symlinkSync(secret, join(md, 'cur', '1.link.host:2,'));
    const small = putMessage(md, 'Subject: one\n\nbody\n', { cur: true, name: '2.small.host:2,' });
    const big = putMessage(md, Buffer.alloc(200_000, 'a line of a large message\n'), {
      cur: true,
      name: '3.big.host:2,',
    });
    const store = new MaildirStore();
    const opened = await store.open({ login: 'joe@x', maildir: md });
    assert.equal(opened.kind, 'ok');
    if (opened.kind !== 'ok') return;
    assert.equal(opened.mailbox.list().length, 2, 'the link is not listed');
    // Between LIST and RETR the small message becomes a FIFO (no writer), the large one a link to the key.
    unlinkSync(join(md, 'cur', small));
    execFileSync('mkfifo', [join(md, 'cur', small)]);
    unlinkSync(join(md, 'cur', big));
    symlinkSync(secret, join(md, 'cur', big));
    // A blocking open of the FIFO would hang this process here (the test would time out).
    assert.throws(() => opened.mailbox.readStored(1), /ESPIPE/, 'a FIFO is not waited on: its read fails at once');
    await assert.rejects(opened.mailbox.retrieve(2), /ELOOP/, 'the link is not followed');
    opened.mailbox.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
