// `quail inject` and the `sendmail` binary run as processes against a temporary root; checked via the queue's API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openQueue, type QueuedMessage } from '../queue/index.js';
import { parseSendmailArgv, toInjectArgs } from './sendmail-cmd.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const SENDMAIL = fileURLToPath(new URL('./sendmail.js', import.meta.url));

async function makeRoot(): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'quail-inject-cli-'));
  mkdirSync(join(root, 'control'));
  writeFileSync(join(root, 'control', 'me'), 'mx.example.test\n');
  writeFileSync(join(root, 'control', 'defaultdomain'), 'example.test\n');
  (await openQueue(root)).close();
  return root;
}

function run(file: string, args: string[], input: string, env: Record<string, string>) {
  const base: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', USER: 'tester' };
  const r = spawnSync(process.execPath, [file, ...args], { input, env: { ...base, ...env }, encoding: 'latin1' });
  return { exit: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function queued(root: string): Promise<Array<QueuedMessage & { text: string }>> {
  const q = await openQueue(root, { create: false });
  const out: Array<QueuedMessage & { text: string }> = [];
  for (const id of await q.ids()) {
    const m = await q.read(id);
    if (m) out.push({ ...m, text: readFileSync(q.messagePath(id), 'latin1') });
  }
  q.close();
  return out;
}

void test('quail inject: header recipients, rewriting, Bcc removed, nothing printed, exit 0', async () => {
  const root = await makeRoot();
  const r = run(MAIN, ['inject'], 'To: joe, bob@host\nBcc: secret\nSubject: hi\n\nbody\n', { QUAIL_ROOT: root });
  assert.deepEqual(r, { exit: 0, stdout: '', stderr: '' });
  const [m, more] = await queued(root);
  assert.ok(m);
  assert.equal(more, undefined);
  assert.equal(m.sender, 'tester@mx.example.test');
  assert.deepEqual(
    m.recipients.map((x) => x.original),
    ['bob@host.example.test', 'joe@mx.example.test', 'secret@mx.example.test'],
  );
  assert.match(m.text, /^Received: \(qmail \d+ invoked by uid \d+\);/);
  assert.match(
    m.text,
    /\nMessage-ID: <\d+\.\d+\.qmail@mx\.example\.test>\nFrom: tester@mx\.example\.test\nTo: joe@mx\.example\.test, bob@host\.example\.test\nSubject: hi\n\nbody\n$/,
  );
  assert.doesNotMatch(m.text, /Bcc|secret/);
});

void test('quail inject: -f and argument recipients, --root; errors exit 100/111 with a message', async () => {
  const root = await makeRoot();
  const r = run(MAIN, ['inject', '-fbounce@list.test', 'a', '-h', '--root', root], 'To: ignored@x.test\n\nb\n', {});
  // -h after a recipient is a recipient, as with getopt
  assert.equal(r.exit, 0, r.stderr);
  const [m] = await queued(root);
  assert.equal(m?.sender, 'bounce@list.test');
  assert.deepEqual(
    m?.recipients.map((x) => x.original),
    ['a@mx.example.test', '-h@mx.example.test'],
  );

  const none = run(MAIN, ['inject'], 'Subject: x\n\nb\n', { QUAIL_ROOT: root });
  assert.equal(none.exit, 100);
  assert.match(none.stderr, /^quail inject: fatal: no recipients/);
  const bad = run(MAIN, ['inject', 'x@(bad'], 'b\n', { QUAIL_ROOT: root });
  assert.equal(bad.exit, 100);
  assert.match(bad.stderr, /unable to parse address: x@\(bad/);
  const noQueue = run(MAIN, ['inject', 'a'], 'b\n', { QUAIL_ROOT: join(root, 'nope') });
  assert.equal(noQueue.exit, 111);
  assert.match(noQueue.stderr, /^quail inject: fatal: no queue at/);
  assert.equal((await queued(root)).length, 1, 'failed runs queue nothing');
});

void test('sendmail -t -oi -F: recipients from the header plus arguments, full name in From; -bp lists the queue', async () => {
  const root = await makeRoot();
  const r = run(
    SENDMAIL,
    ['-t', '-oi', '-oem', '-odi', '-N', 'never', '-v', '-F', 'Joe Q', 'extra@x.test'],
    'To: one@x.test\nCc: two\n\nhello\n',
    { QUAIL_ROOT: root },
  );
  assert.deepEqual(r, { exit: 0, stdout: '', stderr: '' });
  const [m] = await queued(root);
  assert.ok(m);
  assert.deepEqual(
    m.recipients.map((x) => x.original),
    ['extra@x.test', 'one@x.test', 'two@mx.example.test'],
  );
  assert.match(m.text, /\nFrom: "Joe Q" <tester@mx\.example\.test>\n/);

  const plain = run(SENDMAIL, ['-f', 'sender@x.test', 'only@x.test'], 'To: notused@x.test\n\nb\n', {
    QUAIL_ROOT: root,
  });
  assert.equal(plain.exit, 0, plain.stderr);
  const all = await queued(root);
  const second = all.find((x) => x.sender === 'sender@x.test');
  assert.deepEqual(
    second?.recipients.map((x) => x.original),
    ['only@x.test'],
  );

  const list = run(SENDMAIL, ['-bp'], '', { QUAIL_ROOT: root });
  assert.equal(list.exit, 0, list.stderr);
  assert.match(list.stdout, /<tester@mx\.example\.test>/);
  assert.match(list.stdout, /\ttodo\t-\tonly@x\.test\n/);

  const bad = run(SENDMAIL, ['-bz'], '', { QUAIL_ROOT: root });
  assert.equal(bad.exit, 100);
  assert.match(bad.stderr, /^sendmail: fatal: -bz is not supported/);
});

void test('sendmail -bs: one SMTP session on stdin/stdout', async () => {
  const root = await makeRoot();
  const input =
    'HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@mx.example.test>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n';
  const r = run(SENDMAIL, ['-bs'], input, { QUAIL_ROOT: root });
  assert.equal(r.exit, 0, r.stderr);
  assert.match(
    r.stdout,
    /^220 mx\.example\.test ESMTP\r\n250 mx\.example\.test\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n250 ok \d+ qp \S+\r\n221 /,
  );
  const [m] = await queued(root);
  assert.equal(m?.sender, 'a@b.test');
  assert.deepEqual(
    m?.recipients.map((x) => x.original),
    ['c@mx.example.test'],
  );
});

void test('sendmail argument parsing: golden table', () => {
  const table: Array<[string[], ReturnType<typeof toInjectArgs> | string]> = [
    [['-t'], { source: 'both', recipients: [] }],
    [['a@b'], { source: 'args', recipients: ['a@b'] }],
    [['-fme@x', '-oi', 'a'], { source: 'args', sender: 'me@x', recipients: ['a'] }],
    [['-r', 'me@x', '-i', '--', '-a'], { source: 'args', sender: 'me@x', recipients: ['-a'] }],
    [['-oQ/var/spool', '-odb', '-Ntrue', '-Bbinarymime', '-q15m', 'x'], { source: 'args', recipients: ['x'] }],
    [['-ti', 'x'], { source: 'both', recipients: ['x'] }],
    [['-k'], 'unknown option -k'],
    [['-f'], 'option -f needs a value'],
  ];
  for (const [argv, expected] of table) {
    if (typeof expected === 'string')
      assert.throws(() => parseSendmailArgv(argv), new RegExp(expected), argv.join(' '));
    else assert.deepEqual(toInjectArgs(parseSendmailArgv(argv)), expected, argv.join(' '));
  }
  assert.equal(parseSendmailArgv(['-bp']).mode, 'list');
  assert.equal(parseSendmailArgv(['-bs']).mode, 'smtp');
  assert.equal(parseSendmailArgv(['-F', 'N', '--root', '/r']).root, '/r');
  assert.equal(parseSendmailArgv(['-F', 'N']).fullName, 'N');
});
