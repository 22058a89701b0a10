// Whole messages through the injector: added fields, dropped fields, envelope choice, header/body split.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Control } from '../control/index.js';
import type { NewMessage, QueueId } from '../queue/index.js';
import { injectMessage, parseInjectArgv, prepareMessage } from './inject.js';
import type { InjectEnv } from './rewrite.js';

const T = 1_700_000_000; // 14 Nov 2023 22:13:20 UTC
const DATE = 'Date: 14 Nov 2023 22:13:20 -0000\n';
const MID = `Message-ID: <${T}.4242.qmail@id.test>\n`;

function root(): string {
  const r = mkdtempSync(join(tmpdir(), 'quail-inject-'));
  mkdirSync(join(r, 'control'));
  const files: Record<string, string> = {
    me: 'me.test\n',
    defaulthost: 'mail\n',
    defaultdomain: 'example.test\n',
    plusdomain: 'plus.test\n',
    idhost: 'id.test\n',
  };
  for (const [k, v] of Object.entries(files)) writeFileSync(join(r, 'control', k), v);
  return r;
}
const ROOT = root();

async function run(input: string | string[], argv: string[] = [], env: InjectEnv = { USER: 'tester' }) {
  const m = await prepareMessage(
    Readable.from(Array.isArray(input) ? input.map((s) => Buffer.from(s, 'latin1')) : [Buffer.from(input, 'latin1')]),
    parseInjectArgv(argv),
    {
      control: new Control(ROOT),
      env,
      now: () => T * 1000 + 999,
      pid: 4242,
    },
  );
  const chunks: Buffer[] = [];
  for await (const c of m.data) chunks.push(c as Buffer);
  return { sender: m.sender, recipients: m.recipients, text: Buffer.concat(chunks).toString('latin1') };
}

void test('messages: golden table (envelope and rewritten message)', async () => {
  const FROM = 'From: tester@mail.example.test\n';
  const table: Array<{
    name: string;
    input: string;
    argv?: string[];
    env?: InjectEnv;
    sender: string;
    rcpts: string[];
    text: string;
  }> = [
    {
      name: 'Bcc is a recipient and is removed; Content-Length is dropped',
      input: 'To: a\nBcc: b, c\nContent-Length: 12\nSubject: s\n\nbody\n',
      sender: 'tester@mail.example.test',
      rcpts: ['a@mail.example.test', 'c@mail.example.test', 'b@mail.example.test'],
      text: `${DATE}${MID}${FROM}To: a@mail.example.test\nSubject: s\n\nbody\n`,
    },
    {
      name: 'no To or Cc: an empty Cc group is added',
      input: 'Bcc: hidden\n\nx\n',
      sender: 'tester@mail.example.test',
      rcpts: ['hidden@mail.example.test'],
      text: `${DATE}${MID}${FROM}Cc: recipient list not shown: ;\n\nx\n`,
    },
    {
      name: 'Date, Message-ID and From kept when present; From, Reply-To and Sender rewritten',
      input: 'Date: whenever\nMessage-ID: <x@y>\nFrom: Joe <joe>\nReply-To: r@host+\nSender: s\nTo: t@u.test\n\nb\n',
      sender: 'tester@mail.example.test',
      rcpts: ['t@u.test'],
      text: 'Date: whenever\nMessage-ID: <x@y>\nFrom: Joe <joe@mail.example.test>\nReply-To: r@host.plus.test\nSender: s@mail.example.test\nTo: t@u.test\n\nb\n',
    },
    {
      name: 'Return-Path gives the envelope sender and is removed',
      input: 'Return-Path: <bounce@list>\nTo: t@u.test\n\nb\n',
      sender: 'bounce@list.example.test',
      rcpts: ['t@u.test'],
      text: `${DATE}${MID}${FROM}To: t@u.test\n\nb\n`,
    },
    {
      name: '-f wins over Return-Path; -s ignores Return-Path',
      input: 'Return-Path: <bounce@list>\nTo: t@u.test\n\nb\n',
      argv: ['-f', 'me@here.test'],
      sender: 'me@here.test',
      rcpts: ['t@u.test'],
      text: `${DATE}${MID}${FROM}To: t@u.test\n\nb\n`,
    },
    {
      name: 'arguments: header recipients not used and To not rewritten; -H uses both',
      input: 'To: x\n\nb\n',
      argv: ['-H', 'arg'],
      sender: 'tester@mail.example.test',
      rcpts: ['arg@mail.example.test', 'x@mail.example.test'],
      text: `${DATE}${MID}${FROM}To: x@mail.example.test\n\nb\n`,
    },
    {
      name: 'Resent- fields: recipients from Resent-To/Cc/Bcc, Resent- fields added',
      input: 'To: orig\nResent-To: new\nResent-Bcc: hid\nFrom: o@o.test\nDate: d\nMessage-ID: <m@m>\n\nb\n',
      sender: 'tester@mail.example.test',
      rcpts: ['new@mail.example.test', 'hid@mail.example.test'],
      text: `Resent-${DATE}Resent-${MID}Resent-${FROM}To: orig@mail.example.test\nResent-To: new@mail.example.test\nFrom: o@o.test\nDate: d\nMessage-ID: <m@m>\n\nb\n`,
    },
    {
      name: 'QMAILNAME, QMAILHOST, QMAILUSER build the From; QMAILSUSER the sender',
      input: 'To: a@b.test\n\nb\n',
      env: { USER: 'u', QMAILUSER: 'qu', QMAILHOST: 'host', QMAILNAME: 'Q. User', QMAILSUSER: 'bounces' },
      sender: 'bounces@host.example.test',
      rcpts: ['a@b.test'],
      text: `${DATE}${MID}From: "Q. User" <qu@host.example.test>\nTo: a@b.test\n\nb\n`,
    },
    {
      name: 'QMAILINJECT=c puts the name in a comment; f and i replace From and Message-ID; r makes a VERP sender',
      input: 'From: old@x.test\nMessage-ID: <old@x>\nTo: a@b.test\n\nb\n',
      env: { USER: 'u', QMAILNAME: 'Name', QMAILINJECT: 'cfir' },
      sender: 'u-@mail.example.test-@[]',
      rcpts: ['a@b.test'],
      text: `${DATE}${MID}From: u@mail.example.test (Name)\nTo: a@b.test\n\nb\n`,
    },
    {
      name: 'mbox From line, a non-field line starts the body after an inserted blank line, final newline added',
      input: 'From someone Mon Jan  1\nTo: a@b.test\nnot a field\nlast',
      sender: 'tester@mail.example.test',
      rcpts: ['a@b.test'],
      text: `${DATE}${MID}${FROM}MBOX-Line: From someone Mon Jan  1\nTo: a@b.test\n\nnot a field\nlast\n`,
    },
    {
      name: 'continuation lines belong to their field; no body at all',
      input: 'To: a@b.test,\n\tc@d.test\nSubject: x\n  y',
      sender: 'tester@mail.example.test',
      rcpts: ['c@d.test', 'a@b.test'],
      text: `${DATE}${MID}${FROM}To: a@b.test, c@d.test\nSubject: x\n  y\n`,
    },
    {
      name: 'empty input',
      input: '',
      argv: ['x'],
      sender: 'tester@mail.example.test',
      rcpts: ['x@mail.example.test'],
      text: `${DATE}${MID}${FROM}Cc: recipient list not shown: ;\n`,
    },
  ];
  for (const c of table) {
    const r = await run(c.input, c.argv, c.env);
    assert.equal(r.text, c.text, c.name);
    assert.equal(r.sender, c.sender, c.name);
    assert.deepEqual(r.recipients, c.rcpts, c.name);
  }
});

void test('the header may arrive in pieces, split anywhere', async () => {
  const whole = 'To: a@b.test,\n c@d.test\nSubject: s\n\nline1\nline2\n';
  const one = await run(whole);
  for (let cut = 1; cut < whole.length; cut++) {
    const r = await run([whole.slice(0, cut), whole.slice(cut)]);
    assert.equal(r.text, one.text, `cut at ${cut}`);
    assert.deepEqual(r.recipients, one.recipients);
  }
});

void test('errors: bad header syntax and bad arguments are permanent', async () => {
  await assert.rejects(
    run('From: "unclosed\nTo: a\n\nb\n'),
    (e: Error & { temporary?: boolean }) =>
      e.temporary === false && /unable to parse this header field: From: "unclosed/.test(e.message),
  );
  await assert.rejects(
    run('To: a\n\nb\n', ['x@(bad']),
    (e: Error & { temporary?: boolean }) => e.temporary === false && /unable to parse address/.test(e.message),
  );
  assert.throws(() => parseInjectArgv(['-x']), /unknown option -x/);
  assert.throws(() => parseInjectArgv(['-f']), /needs a sender/);
});

void test('recipient fields as qmail-inject: rewritten with arguments too; one it cannot parse kept as written', async () => {
  const args = await run('To: a\nCc: "unclosed\n\nb\n', ['x@y.test']);
  assert.deepEqual(args.recipients, ['x@y.test']);
  assert.match(args.text, /^To: a@mail\.example\.test\nCc: "unclosed\n/m);
  const header = await run('To: a\nCc: "unclosed\nBcc: b\0c@d.test\n\nb\n');
  assert.deepEqual(header.recipients, ['a@mail.example.test', 'b'], 'a NUL ends an address (a C string)');
  assert.match(header.text, /Cc: "unclosed\n/);
});

void test('argv: getopt style', () => {
  assert.deepEqual(parseInjectArgv(['-fbounces@list.test', 'joe', 'bob@host']), {
    source: 'default',
    sender: 'bounces@list.test',
    recipients: ['joe', 'bob@host'],
    print: false,
    deleteReturnPath: false,
  });
  assert.deepEqual(parseInjectArgv(['-ah', '-n', '--', '-x']).recipients, ['-x']);
  assert.equal(parseInjectArgv(['-ah']).source, 'header');
});

void test('injectMessage: no recipients is permanent; queue failure is temporary', async () => {
  const got: NewMessage[] = [];
  const target = {
    inject: (m: NewMessage): Promise<QueueId> => {
      got.push(m);
      return Promise.resolve('id1' as QueueId);
    },
  };
  const opts = { control: new Control(ROOT), env: { USER: 'tester' }, uid: 1234 };
  await assert.rejects(
    injectMessage(target, Readable.from([Buffer.from('Subject: x\n\nb\n')]), parseInjectArgv([]), opts),
    (e: Error & { temporary?: boolean }) => e.temporary === false && /no recipients/.test(e.message),
  );
  const r = await injectMessage(target, Readable.from([Buffer.from('To: a\n\nb\n')]), parseInjectArgv([]), opts);
  assert.equal(r.id, 'id1');
  assert.deepEqual([got[0]?.sender, got[0]?.recipients], ['tester@mail.example.test', ['a@mail.example.test']]);
  assert.deepEqual(got[0]?.injector, { kind: 'uid', uid: 1234 });
  const failing = { inject: (): Promise<QueueId> => Promise.reject(new Error('EROFS')) };
  await assert.rejects(
    injectMessage(failing, Readable.from([Buffer.from('To: a\n\nb\n')]), parseInjectArgv([]), opts),
    (e: Error & { temporary?: boolean }) =>
      e.temporary === true && /unable to queue the message: EROFS/.test(e.message),
  );
});
