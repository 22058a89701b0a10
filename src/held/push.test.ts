// Pushes of a held Maildir against scripted SMTP servers on 127.0.0.x, with a real queue for the bounces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bounceConfigFrom } from '../bounce/index.js';
import { Control } from '../control/index.js';
import { openQueue } from '../queue/index.js';
import { classifierFor } from '../remote/index.js';
import { testSmtp, unstuffed } from '../../test/support/testsmtp.js';
import { freePort } from '../../test/support/start.js';
import { parseHead, pushMaildir, tcpConnector, parseHostPort, type PushOptions } from './index.js';

const PREFIX = 'some.example.com-';
const NOW = 1_900_000_000;

/** A mail root with a queue, and a held Maildir beside it. */
function world(): { root: string; dir: string } {
  const root = mkdtempSync(join(tmpdir(), 'quail-held-'));
  mkdirSync(join(root, 'control'));
  writeFileSync(join(root, 'control', 'me'), 'isp.test\n');
  const dir = join(root, 'serialmail', 'Maildir');
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(dir, sub), { recursive: true });
  return { root, dir };
}

/** A file as qmail-local writes it into the held Maildir (name starts with its delivery time). */
function held(dir: string, n: number, rcpt: string, opts: { sender?: string; time?: number } = {}): string {
  const name = `${opts.time ?? NOW - 60}.M${n}P1.isp.test`;
  const text =
    `Return-Path: <${opts.sender ?? 'alice@far.test'}>\nDelivered-To: ${rcpt}\n` +
    `Received: (qmail 1 invoked from network); x\nSubject: held ${n}\n\n.dot line ${n}\nbody\n`;
  writeFileSync(join(dir, 'new', name), text);
  return name;
}

async function options(
  root: string,
  dir: string,
  port: number,
  extra: Partial<PushOptions> = {},
): Promise<PushOptions> {
  const control = new Control(root);
  const queue = await openQueue(root, { create: true });
  return {
    dir,
    prefix: PREFIX,
    connect: tcpConnector('127.0.0.1', port, 5000),
    servername: '127.0.0.1',
    helo: 'isp.test',
    tls: { mode: 'may' },
    remoteMs: 10_000,
    classify: classifierFor(null),
    lifetime: 1209600,
    bounce: { config: bounceConfigFrom(control), inject: (m) => queue.inject(m).then(String) },
    now: () => NOW,
    ...extra,
  };
}

const queued = (root: string): string[] =>
  existsSync(join(root, 'queue', 'env')) ? readdirSync(join(root, 'queue', 'env')) : [];

void test('parseHead: sender from Return-Path, recipient from the first Delivered-To without the prefix', () => {
  const rows: Array<[string, string, ReturnType<typeof parseHead>]> = [
    [
      'Return-Path: <a@b>\nDelivered-To: some.example.com-joe@some.example.com\nDelivered-To: x\n\nbody\n',
      PREFIX,
      { kind: 'ok', sender: 'a@b', recipient: 'joe@some.example.com', offset: 19 },
    ],
    [
      'Return-Path: <>\nDelivered-To: SOME.example.com-j@s\n\n',
      PREFIX,
      { kind: 'ok', sender: '', recipient: 'j@s', offset: 16 },
    ],
    [
      'Return-Path: <"a b"@c>\nDelivered-To: p-x@y\n\n',
      'p-',
      { kind: 'ok', sender: 'a b@c', recipient: 'x@y', offset: 23 },
    ],
    [
      'Return-Path: <a@b>\nDelivered-To: other-joe@x\n\n',
      PREFIX,
      { kind: 'foreign', reason: 'Delivered-To other-joe@x does not start with some.example.com-' },
    ],
    [
      'Return-Path: <a@b>\nSubject: x\n\nDelivered-To: some.example.com-j@x\n',
      PREFIX,
      { kind: 'foreign', reason: 'no Delivered-To line' },
    ],
    ['Delivered-To: some.example.com-j@x\n\n', PREFIX, { kind: 'foreign', reason: 'no Return-Path line' }],
    [
      'Return-Path: <a@b>\nDelivered-To: some.example.com-\n\n',
      PREFIX,
      { kind: 'foreign', reason: 'Delivered-To some.example.com- does not start with some.example.com-' },
    ],
  ];
  for (const [head, prefix, want] of rows) assert.deepEqual(parseHead(head, prefix), want, head);
});

void test('parseHostPort: names, ports, literals; bad input says what to give', () => {
  assert.deepEqual(parseHostPort('mail.x.test'), { host: 'mail.x.test', port: 25 });
  assert.deepEqual(parseHostPort('mail.x.test:2525'), { host: 'mail.x.test', port: 2525 });
  assert.deepEqual(parseHostPort('[127.0.0.1]:26'), { host: '127.0.0.1', port: 26 });
  assert.deepEqual(parseHostPort('::1'), { host: '::1', port: 25 });
  assert.throws(() => parseHostPort('x:99999'), /1 to 65535/);
  assert.throws(() => parseHostPort(''), /HOST or HOST:PORT/);
});

void test('one connection, pipelined: each message once, recipient without the prefix, removed only after 250', async () => {
  const { root, dir } = world();
  const smtp = await testSmtp('127.0.0.1', { ehlo: ['PIPELINING', '8BITMIME'] });
  const a = held(dir, 1, `${PREFIX}joe@some.example.com`);
  const b = held(dir, 2, `${PREFIX}ann@some.example.com`, { sender: '' });
  const c = held(dir, 3, 'other.example.com-bob@other.example.com');
  writeFileSync(
    join(dir, 'cur', `${NOW}.M9P1.isp.test:2,S`),
    readFileSync(join(dir, 'new', a))
      .toString()
      .replace('joe', 'sam'),
  );
  const r = await pushMaildir(await options(root, dir, smtp.port));
  assert.equal(r.reached, true);
  assert.equal(r.stopped, undefined);
  assert.deepEqual(
    r.messages.map((m) => [m.file, m.fate]),
    [
      [`new/${a}`, 'sent'],
      [`new/${b}`, 'sent'],
      [`new/${c}`, 'foreign'],
      [`cur/${NOW}.M9P1.isp.test:2,S`, 'sent'],
    ],
  );
  assert.equal(smtp.connections.length, 1);
  assert.deepEqual(
    smtp.messages.map((m) => m.recipients),
    [['joe@some.example.com'], ['ann@some.example.com'], ['sam@some.example.com']],
  );
  assert.ok(smtp.lines.includes('MAIL FROM:<>'));
  const first = unstuffed(smtp.messages[0]?.raw ?? '').toString();
  assert.ok(first.startsWith(`Delivered-To: ${PREFIX}joe@some.example.com\n`), first); // Return-Path is not sent
  assert.match(first, /\n\.dot line 1\n/);
  assert.deepEqual(readdirSync(join(dir, 'new')), [c]);
  assert.deepEqual(readdirSync(join(dir, 'cur')), []);
  await smtp.close();
});

void test('customer offline: nothing touched, even a message past its lifetime; online later: arrives once', async () => {
  const { root, dir } = world();
  const port = await freePort();
  const name = held(dir, 1, `${PREFIX}joe@some.example.com`, { time: NOW - 30 * 86400 });
  const off = await pushMaildir(await options(root, dir, port));
  assert.equal(off.reached, false);
  assert.match(off.stopped ?? '', /refused the connection/);
  assert.deepEqual(readdirSync(join(dir, 'new')), [name]);
  assert.deepEqual(queued(root), []);
  const smtp = await testSmtp('127.0.0.1', { port });
  const on = await pushMaildir(await options(root, dir, port));
  assert.deepEqual(
    on.messages.map((m) => m.fate),
    ['sent'],
  );
  const again = await pushMaildir(await options(root, dir, port));
  assert.deepEqual(again.messages, []);
  assert.equal(smtp.messages.length, 1);
  await smtp.close();
});

void test('5xx bounces once to the Return-Path and removes; 4xx keeps; 4xx past the lifetime bounces', async () => {
  const { root, dir } = world();
  const smtp = await testSmtp('127.0.0.1', {
    rcpt: (a) => (a.startsWith('gone') ? '550 no such user' : a.startsWith('full') ? '452 mailbox full' : undefined),
  });
  const gone = held(dir, 1, `${PREFIX}gone@some.example.com`);
  const full = held(dir, 2, `${PREFIX}full@some.example.com`);
  const old = held(dir, 3, `${PREFIX}full2@some.example.com`, { time: NOW - 1209601, sender: 'old@far.test' });
  const ok = held(dir, 4, `${PREFIX}joe@some.example.com`);
  const r = await pushMaildir(await options(root, dir, smtp.port));
  const fates = Object.fromEntries(r.messages.map((m) => [m.file, m.fate]));
  assert.deepEqual(fates, {
    [`new/${gone}`]: 'bounced',
    [`new/${full}`]: 'kept',
    [`new/${old}`]: 'bounced',
    [`new/${ok}`]: 'sent',
  });
  assert.deepEqual(readdirSync(join(dir, 'new')), [full]);
  const bounces = await readBounces(root);
  assert.deepEqual(bounces.map((b) => b.to).sort(), ['alice@far.test', 'old@far.test']);
  assert.ok(bounces.some((b) => b.text.includes('550 no such user')));
  assert.ok(bounces.some((b) => b.text.includes('452 mailbox full') && b.text.includes('too long')));
  // The 4xx message again: kept, no second bounce.
  const r2 = await pushMaildir(await options(root, dir, smtp.port));
  assert.deepEqual(
    r2.messages.map((m) => m.fate),
    ['kept'],
  );
  assert.equal((await readBounces(root)).length, 2);
  await smtp.close();
});

void test('without -b a permanent failure stays in the Maildir and nothing is queued', async () => {
  const { root, dir } = world();
  const smtp = await testSmtp('127.0.0.1', { rcpt: () => '550 no' });
  const name = held(dir, 1, `${PREFIX}gone@some.example.com`);
  const o = await options(root, dir, smtp.port);
  const { bounce: _b, ...noBounce } = o;
  const r = await pushMaildir(noBounce);
  assert.deepEqual(
    r.messages.map((m) => m.fate),
    ['refused'],
  );
  assert.deepEqual(readdirSync(join(dir, 'new')), [name]);
  assert.deepEqual(await readBounces(root), []);
  await smtp.close();
});

void test('two concurrent pushes of one Maildir never send a message twice', async () => {
  const { root, dir } = world();
  const smtp = await testSmtp('127.0.0.1', { ehlo: ['PIPELINING'] });
  for (let i = 0; i < 20; i++) held(dir, i, `${PREFIX}u${i}@some.example.com`);
  const [x, y] = await Promise.all([
    pushMaildir(await options(root, dir, smtp.port)),
    pushMaildir(await options(root, dir, smtp.port)),
  ]);
  const sent = [...x.messages, ...y.messages].filter((m) => m.fate === 'sent').map((m) => m.file);
  assert.equal(sent.length, 20);
  assert.equal(new Set(sent).size, 20);
  const rcpts = smtp.messages.flatMap((m) => m.recipients);
  assert.equal(rcpts.length, 20);
  assert.equal(new Set(rcpts).size, 20);
  assert.deepEqual(readdirSync(join(dir, 'new')), []);
  await smtp.close();
});

/** The bounces in the queue: recipient and text (the queue's own files, read as the scheduler would). */
async function readBounces(root: string): Promise<Array<{ to: string; text: string }>> {
  const q = await openQueue(root, { create: true });
  try {
    const out: Array<{ to: string; text: string }> = [];
    for (const id of await q.ids()) {
      const env = await q.envelope(id);
      const to = (env?.recipients ?? []).map((r) => r.original).join(',');
      out.push({ to, text: readFileSync(q.messagePath(id), 'latin1') });
    }
    return out;
  } finally {
    q.close();
  }
}
