// Bounce text: golden paragraphs, envelopes, QSBMF byte for byte against the oracle corpus, DSN structure.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Control } from '../control/index.js';
import {
  bounceConfigFrom,
  bounceEnvelope,
  composeBounce,
  failureParagraph,
  failureStatus,
  type BounceConfig,
  type BounceFailure,
} from './index.js';
import { headerOfFile } from './stream.js';
import { repoPath } from '../../test/support/paths.js';

/** The repository's pinned oracle corpus (test/conformance/corpus), found from this file, not the cwd. */
const CORPUS = repoPath('test', 'conformance', 'corpus');
const NOSUCH = 'Sorry, no mailbox here by that name. (#5.1.1)\n';
const REJECT =
  '127.0.0.1 does not like recipient.\nRemote host said: 550 sink: no such user here\nGiving up on 127.0.0.1.\n';
const TOO_LONG = "I'm not going to try again; this message has been in the queue too long.\n";
const CFG: BounceConfig = {
  bouncefrom: 'MAILER-DAEMON',
  bouncehost: 'mx.test',
  doublebounceto: 'postmaster@mx.test',
  format: 'qsbmf',
};

void test('failure paragraphs (F.6 addbounce rules, golden)', () => {
  const table: Array<[BounceFailure, string]> = [
    [{ address: 'a@b', report: NOSUCH }, `<a@b>:\n${NOSUCH}\n`],
    [{ address: 'a@b', report: 'no newline' }, '<a@b>:\nno newline\n\n'],
    [{ address: 'a@b', report: '' }, '<a@b>:\n\n'],
    // qmail scans backwards and turns the second newline of a pair into '/': the empty line joins the
    // next one (the oracle's pg-008 bounce shows exactly this), and two empty lines become '//'.
    [{ address: 'a@b', report: 'line one\n\nline three\n' }, '<a@b>:\nline one\n/line three\n\n'],
    [{ address: 'a@b', report: 'a\n\n\nb\n' }, '<a@b>:\na\n//b\n\n'],
    [{ address: 'a@b', report: 'x\n\n' }, '<a@b>:\nx\n\n\n'],
    [{ address: 'a\nb@c', report: 'r\n' }, '<a_b@c>:\nr\n\n'],
  ];
  for (const [input, expected] of table) assert.equal(failureParagraph(input), expected, JSON.stringify(input));
});

void test('bounce envelopes (F.5)', () => {
  assert.deepEqual(bounceEnvelope('s@o.test', CFG), {
    kind: 'bounce',
    sender: '',
    recipient: 's@o.test',
    returnPath: 's@o.test',
  });
  assert.deepEqual(bounceEnvelope('owner-@host-@[]', CFG), {
    kind: 'bounce',
    sender: '',
    recipient: 'owner-@host',
    returnPath: 'owner-@host',
  });
  assert.deepEqual(bounceEnvelope('', CFG), {
    kind: 'double',
    sender: '#@[]',
    recipient: 'postmaster@mx.test',
    returnPath: '',
  });
  assert.deepEqual(bounceEnvelope('#@[]', CFG), { kind: 'triple', returnPath: '#@[]' });
});

void test('enhanced status of a failure', () => {
  assert.equal(failureStatus(NOSUCH), '5.1.1');
  assert.equal(failureStatus(REJECT), '5.0.0');
  assert.equal(failureStatus('x\nRemote host said: 550 5.7.1 relaying denied\n'), '5.7.1');
  assert.equal(failureStatus(`Uh-oh: home directory is writable. (#4.7.0)\n${TOO_LONG}`), '5.7.0');
});

async function readAll(s: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('latin1');
}

interface Golden {
  readonly id: string;
  readonly failures: BounceFailure[];
}

// Raw (un-logsafe) reports of each scenario's failures, in the order the oracle's bounce lists them.
const GOLDEN: Golden[] = [
  {
    id: 'bn-001',
    failures: [
      { address: 'reject550@remote.test', report: REJECT },
      { address: 'nosuch1@local.test', report: NOSUCH },
      { address: 'qoalice-nosuch@local.test', report: NOSUCH },
    ],
  },
  { id: 'bn-002', failures: [{ address: 'nosuch@local.test', report: NOSUCH }] },
  { id: 'bn-004', failures: [{ address: 'nosuch@local.test', report: NOSUCH }] },
  {
    id: 'bn-006',
    failures: [{ address: 'qoalice@local.test', report: `Uh-oh: home directory is writable. (#4.7.0)\n${TOO_LONG}` }],
  },
  { id: 'bn-007', failures: [{ address: 'nosuch@local.test', report: NOSUCH }] },
  { id: 'pg-008', failures: [{ address: 'qoalice@local.test', report: 'line one\n\nline three\n' }] },
  {
    id: 'bn-008',
    failures: [
      { address: 'qoalice-a@local.test', report: 'first\nsecond\n' },
      { address: 'qoalice-b@local.test', report: '' },
    ],
  },
];

interface Corpus {
  input: { control: Record<string, string>; messages: Array<{ sender: string; data: string }> };
  outcome: { remote: Array<{ mail_from: string; rcpt_to: string[]; data: string }> };
}

const normalise = (t: string): string =>
  t.replace(
    /\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} -0000/g,
    '@DATE822@',
  );

void test('QSBMF byte for byte against the oracle bounces (bn-001, -002, -004, -006, -007, -008, pg-008)', async () => {
  const files = readdirSync(CORPUS);
  for (const g of GOLDEN) {
    const file = files.find((f) => f.startsWith(`${g.id}-`));
    assert.ok(file, g.id);
    const s = JSON.parse(readFileSync(join(CORPUS, file), 'utf8')) as Corpus;
    const dir = mkdtempSync(join(tmpdir(), 'quail-bounce-'));
    try {
      mkdirSync(join(dir, 'control'));
      for (const [name, content] of Object.entries({ ...s.input.control, bounceformat: 'qsbmf\n' }))
        writeFileSync(join(dir, 'control', name), content);
      const msg = s.input.messages[0];
      assert.ok(msg);
      const path = join(dir, 'mess');
      writeFileSync(
        path,
        `Received: (qmail @PID@ invoked by uid 0); 22 Nov 2026 03:01:02 -0000\n${msg.data}`,
        'latin1',
      );
      const plan = composeBounce({
        config: bounceConfigFrom(new Control(dir)),
        sender: msg.sender,
        failures: g.failures,
        messagePath: path,
        messageSize: 0,
        now: 1_795_000_000,
        birth: 1_795_000_000,
        uniqueId: 'x',
      });
      assert.notEqual(plan.kind, 'triple');
      if (plan.kind === 'triple') continue;
      const sink = s.outcome.remote.find((r) => r.mail_from === plan.sender && r.rcpt_to.includes(plan.recipient));
      assert.ok(sink, `${g.id}: the oracle sent a bounce from <${plan.sender}> to ${plan.recipient}`);
      const expected = sink.data.replace(/^Received: \(qmail @PID@ invoked for bounce\); @DATE822@\n/, '');
      assert.equal(normalise(await readAll(plan.data)), expected, g.id);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

void test('DSN: multipart/report with qmail text, delivery-status per recipient, the original as message/rfc822', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-dsn-'));
  try {
    const path = join(dir, 'mess');
    writeFileSync(path, 'Subject: hi\n\nbody without final newline');
    const plan = composeBounce({
      config: { ...CFG, format: 'dsn' },
      sender: 'owner-@host.test-@[]',
      failures: [
        { address: 'a@local.test', report: NOSUCH },
        { address: 'b@remote.test', report: REJECT },
      ],
      messagePath: path,
      messageSize: 100,
      now: 1_795_000_100,
      birth: 1_795_000_000,
      uniqueId: 'id-1',
    });
    if (plan.kind !== 'bounce') return assert.fail('expected a bounce');
    assert.equal(plan.recipient, 'owner-@host.test');
    const text = await readAll(plan.data);
    const ct = /^Content-Type: multipart\/report; report-type=delivery-status;\n\tboundary="([^"]+)"$/m.exec(text);
    assert.ok(ct?.[1], 'multipart/report header');
    const b = ct[1];
    const parts = text.split(`\n--${b}`);
    assert.equal(parts.length, 5, 'preamble, three parts, closing');
    assert.equal(parts[4], '--\n');
    const [, human = '', status = '', original = ''] = parts;
    assert.ok(human.startsWith('\nContent-Type: text/plain; charset=us-ascii\n'));
    assert.ok(
      human.includes(
        `\n\nHi. This is the qmail-send program at mx.test.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n<a@local.test>:\n${NOSUCH}\n<b@remote.test>:\n${REJECT}`,
      ),
    );
    assert.ok(status.startsWith('\nContent-Type: message/delivery-status\n'));
    assert.ok(status.includes('\nReporting-MTA: dns; mx.test\nArrival-Date: '));
    assert.ok(
      status.includes(
        '\nFinal-Recipient: rfc822; a@local.test\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: x-qmail; Sorry, no mailbox here by that name. (#5.1.1)\n',
      ),
    );
    assert.ok(
      status.includes(
        '\nFinal-Recipient: rfc822; b@remote.test\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 sink: no such user here\n',
      ),
    );
    assert.ok(original.startsWith('\nContent-Type: message/rfc822\n'));
    assert.ok(
      original.endsWith('\n\nReturn-Path: <owner-@host.test>\nSubject: hi\n\nbody without final newline'),
      'the newline before the delimiter belongs to it (RFC 2046 5.1.1)',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('headerOfFile stops after the first empty line, across chunk boundaries', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-hdr-'));
  try {
    const path = join(dir, 'mess');
    const header = `Subject: x\nX-Long: ${'a'.repeat(70_000)}\n\n`;
    writeFileSync(path, `${header}body\n\nmore\n`);
    const parts: Buffer[] = [];
    for await (const c of headerOfFile(path)) parts.push(c);
    assert.equal(Buffer.concat(parts).toString('latin1'), header);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
