// tier: system (needs util-linux flock; spawns some 40 `quail` processes, too slow for the unit tier)
// The tools as real processes (`quail NAME`, and <root>/bin/NAME through /bin/sh and PATH) against qmail's man pages.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openQueue, type QueuedMessage } from '../queue/index.js';
import { MAIN } from '../../test/support/start.js';
import { writeToolboxBin } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'quail-toolbox-'));
const root = join(dir, 'root');
const MESSAGE = 'Subject: hello\nMessage-ID: <m1@example.org>\n\nFrom the start\nsecond line\n';
const messageFile = join(dir, 'message');

/** qmail-local's variables for a delivery to joe@example.com from sam@example.org. */
const LOCAL_ENV: Record<string, string> = {
  PATH: '/usr/bin:/bin',
  SENDER: 'sam@example.org',
  NEWSENDER: 'joe-owner@example.com',
  RECIPIENT: 'joe@example.com',
  DTLINE: 'Delivered-To: joe@example.com\n',
  RPLINE: 'Return-Path: <sam@example.org>\n',
  UFLINE: 'From sam@example.org Thu Dec  4 10:00:00 2026\n',
};

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** `quail NAME ARGS` with ENV (nothing inherited but QUAIL_ROOT), standard input the message file (or a pipe). */
function tool(name: string, args: readonly string[], o: { env?: Record<string, string>; input?: string } = {}): Run {
  const env = { ...LOCAL_ENV, QUAIL_ROOT: root, ...(o.env ?? {}) };
  if (o.input !== undefined) {
    const r = spawnSync(process.execPath, [MAIN, name, ...args], { env, input: o.input, encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }
  const fd = openSync(messageFile, 'r');
  try {
    const r = spawnSync(process.execPath, [MAIN, name, ...args], {
      env,
      stdio: [fd, 'pipe', 'pipe'],
      encoding: 'utf8',
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  } finally {
    closeSync(fd);
  }
}

/** The messages queued since the last call, with their text. */
const seen = new Set<string>();
async function newlyQueued(): Promise<Array<QueuedMessage & { text: string }>> {
  const q = await openQueue(root, { create: false });
  try {
    const out: Array<QueuedMessage & { text: string }> = [];
    for (const id of await q.ids()) {
      if (seen.has(id)) continue;
      seen.add(id);
      const m = await q.read(id);
      if (m) out.push({ ...m, text: readFileSync(q.messagePath(id), 'latin1') });
    }
    return out;
  } finally {
    q.close();
  }
}

before(async () => {
  mkdirSync(root);
  writeFileSync(messageFile, MESSAGE);
  (await openQueue(root)).close();
});
after(() => spawnSync('rm', ['-rf', dir]));

void describe('preline (qmail preline(1))', () => {
  void it('puts UFLINE, RPLINE and DTLINE in front, in that order, and exits with the program', () => {
    const r = tool('preline', ['sh', '-c', 'cat; exit 37']);
    assert.equal(r.code, 37);
    assert.equal(r.out, LOCAL_ENV['UFLINE']! + LOCAL_ENV['RPLINE']! + LOCAL_ENV['DTLINE']! + MESSAGE);
  });
  void it('-d, -f and -r leave out Delivered-To, From_ and Return-Path; -D -F -R put them back; combined letters work', () => {
    assert.equal(tool('preline', ['-d', 'cat']).out, LOCAL_ENV['UFLINE']! + LOCAL_ENV['RPLINE']! + MESSAGE);
    assert.equal(tool('preline', ['-fr', 'cat']).out, LOCAL_ENV['DTLINE']! + MESSAGE);
    assert.equal(tool('preline', ['-f', '-r', '-d', 'cat']).out, MESSAGE);
    assert.equal(
      tool('preline', ['-dD', 'cat']).out,
      LOCAL_ENV['UFLINE']! + LOCAL_ENV['RPLINE']! + LOCAL_ENV['DTLINE']! + MESSAGE,
    );
  });
  void it('exits 100 with its usage without a program, with an unknown option, or outside qmail-local (no UFLINE)', () => {
    assert.equal(tool('preline', []).code, 100);
    assert.match(tool('preline', ['-x', 'cat']).err, /preline: usage: preline cmd/);
    const env = { ...LOCAL_ENV };
    delete env['UFLINE'];
    const r = spawnSync(process.execPath, [MAIN, 'preline', 'cat'], { env, input: 'x', encoding: 'utf8' });
    assert.equal(r.status, 100);
  });
  void it('a program that cannot be run is permanent (100)', () => {
    const r = tool('preline', ['/nonexistent/procmail']);
    assert.equal(r.code, 100);
    assert.match(r.err, /preline: fatal: unable to run \/nonexistent\/procmail/);
  });
});

void describe('except and bouncesaying', () => {
  void it('except turns 0 into 100 and 100 into 0, passes other codes, gives the message to the program', () => {
    assert.equal(tool('except', ['true']).code, 100);
    assert.equal(tool('except', ['sh', '-c', 'exit 100']).code, 0);
    assert.equal(tool('except', ['sh', '-c', 'exit 111']).code, 111);
    assert.equal(tool('except', ['sh', '-c', 'exit 5']).code, 5);
    assert.equal(tool('except', ['grep', '-q', 'From the start']).code, 100);
    assert.equal(tool('except', []).code, 100);
  });
  void it('bouncesaying alone bounces (100) with its text', () => {
    const r = tool('bouncesaying', ['This address no longer accepts mail.']);
    assert.equal(r.code, 100);
    assert.equal(r.err, 'This address no longer accepts mail.\n');
  });
  void it('bouncesaying with a program bounces on 0, goes on (0) otherwise, defers on 111', () => {
    assert.equal(tool('bouncesaying', ['no hello', 'grep', '-q', '^Subject: hello']).code, 100);
    const quiet = tool('bouncesaying', ['no goodbye', 'grep', '-q', '^Subject: goodbye']);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.err, '');
    assert.equal(tool('bouncesaying', ['x', 'sh', '-c', 'exit 111']).code, 111);
    assert.match(tool('bouncesaying', []).err, /usage: bouncesaying error/);
  });
});

void describe('forward and condredirect (queue through quail)', () => {
  void it('forward queues DTLINE + the message to every address from $NEWSENDER and exits 0', async () => {
    const r = tool('forward', ['a@example.net', 'b@example.net']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /^forward: qp \S+\n$/);
    const [m, ...rest] = await newlyQueued();
    assert.equal(rest.length, 0);
    assert.equal(m?.sender, 'joe-owner@example.com');
    assert.deepEqual(
      m?.recipients.map((x) => x.original),
      ['a@example.net', 'b@example.net'],
    );
    assert.match(
      m?.text ?? '',
      /^Received: \(qmail \d+ invoked by uid \d+\); .*\nDelivered-To: joe@example.com\nSubject: hello\n/,
    );
    assert.ok(m?.text.endsWith(MESSAGE));
  });
  void it('forward without addresses or without NEWSENDER is permanent and queues nothing', async () => {
    assert.equal(tool('forward', []).code, 100);
    const env: Record<string, string> = { ...LOCAL_ENV, QUAIL_ROOT: root };
    delete env['NEWSENDER'];
    const r = spawnSync(process.execPath, [MAIN, 'forward', 'a@example.net'], {
      env,
      input: MESSAGE,
      encoding: 'utf8',
    });
    assert.equal(r.status, 100);
    assert.match(r.stderr, /forward: fatal: NEWSENDER not set/);
    assert.deepEqual(await newlyQueued(), []);
  });
  void it('condredirect forwards (from $SENDER) and exits 99 when the program exits 0', async () => {
    const r = tool('condredirect', ['boss@example.net', 'grep', '-q', '^Subject: hello']);
    assert.equal(r.code, 99, r.err);
    const [m] = await newlyQueued();
    assert.equal(m?.sender, 'sam@example.org');
    assert.deepEqual(
      m?.recipients.map((x) => x.original),
      ['boss@example.net'],
    );
    assert.ok(
      m?.text.endsWith(`Delivered-To: joe@example.com\n${MESSAGE}`),
      'the whole message again, though grep read it',
    );
  });
  void it('condredirect does nothing (0) when the program exits non-zero, defers on 111, needs a rewindable input', async () => {
    assert.equal(tool('condredirect', ['boss@example.net', 'false']).code, 0);
    assert.equal(tool('condredirect', ['boss@example.net', 'sh', '-c', 'exit 111']).code, 111);
    const piped = tool('condredirect', ['boss@example.net', 'true'], { input: MESSAGE });
    assert.equal(piped.code, 111);
    assert.match(piped.err, /unable to rewind/);
    assert.equal(tool('condredirect', ['boss@example.net']).code, 100);
    assert.deepEqual(await newlyQueued(), []);
  });
});

void describe('qreceipt, datemail, mailsubj', () => {
  const asked =
    'Message-ID: <r1@example.org>\nNotice-Requested-Upon-Delivery-To: "joe"@example.com, other@example.net\n\nhi\n';
  void it('qreceipt sends a success notice to $SENDER from <> when the field names its address', async () => {
    assert.equal(tool('qreceipt', ['joe@example.com'], { input: asked }).code, 0);
    const [m] = await newlyQueued();
    assert.equal(m?.sender, '');
    assert.deepEqual(
      m?.recipients.map((x) => x.original),
      ['sam@example.org'],
    );
    assert.match(m?.text ?? '', /\nTo: <sam@example.org>\nSubject: success notice\n\n/);
    assert.match(
      m?.text ?? '',
      /following address: joe@example.com\. Thanks for asking\.\nYour Message-ID: <r1@example.org>\n$/,
    );
  });
  void it('qreceipt sends nothing for another address, a message without the field, or a bounce', async () => {
    assert.equal(tool('qreceipt', ['ann@example.com'], { input: asked }).code, 0);
    assert.equal(tool('qreceipt', ['joe@example.com']).code, 0);
    assert.equal(tool('qreceipt', ['joe@example.com'], { input: asked, env: { SENDER: '' } }).code, 0);
    assert.equal(tool('qreceipt', ['joe@example.com'], { input: asked, env: { SENDER: '#@[]' } }).code, 0);
    assert.equal(tool('qreceipt', []).code, 100);
    assert.deepEqual(await newlyQueued(), []);
  });
  void it('datemail adds a Date field and sends like sendmail; mailsubj builds Subject and To', async () => {
    assert.equal(tool('datemail', ['-t'], { input: 'To: ann@example.net\nSubject: d\n\nbody\n' }).code, 0);
    const [d] = await newlyQueued();
    assert.deepEqual(
      d?.recipients.map((x) => x.original),
      ['ann@example.net'],
    );
    assert.match(d?.text ?? '', /\nDate: \d+ \w{3} \d{4} \d\d:\d\d:\d\d -0000\n/);
    assert.equal(
      tool('mailsubj', ['weekly report', 'ann@example.net', 'bob@example.net'], { input: 'numbers\n' }).code,
      0,
    );
    const [s] = await newlyQueued();
    assert.deepEqual(s?.recipients.map((x) => x.original).sort(), ['ann@example.net', 'bob@example.net']);
    assert.match(s?.text ?? '', /\nSubject: weekly report\n/);
    assert.match(s?.text ?? '', /\n\nnumbers\n$/);
    assert.equal(tool('mailsubj', ['only a subject']).code, 100);
  });
});

void describe('maildir2mbox and maildirwatch', () => {
  const md = join(dir, 'Maildir');
  const mbox = join(dir, 'mbox');
  const env = { MAILDIR: md, MAIL: mbox, MAILTMP: `${mbox}.tmp` };
  before(() => {
    for (const d of ['new', 'cur', 'tmp']) mkdirSync(join(md, d), { recursive: true });
    writeFileSync(
      join(md, 'new', '1.a.host'),
      'Return-Path: <a b@x.example>\nDelivered-To: joe@example.com\nSubject: one\n\nFrom here\n>From there\nlast',
    );
    utimesSync(join(md, 'new', '1.a.host'), new Date('2026-01-01T10:00:00Z'), new Date('2026-01-01T10:00:00Z'));
    writeFileSync(join(md, 'cur', '2.b.host:2,S'), 'Return-Path: <>\nSubject: two\n\nx\n');
    utimesSync(join(md, 'cur', '2.b.host:2,S'), new Date('2026-01-02T10:00:00Z'), new Date('2026-01-02T10:00:00Z'));
  });
  void it('maildirwatch lists new/ once when not on a terminal', () => {
    const r = tool('maildirwatch', [], { env, input: '' });
    assert.equal(r.code, 0);
    assert.equal(r.out, 'FROM <a b@x.example> TO <joe@example.com>\none/From here/>From there/last\n\n');
  });
  void it('maildir2mbox appends new/ and cur/ oldest first to $MAIL with From_ lines and >From quoting, then empties the Maildir', () => {
    writeFileSync(mbox, 'old\n\n');
    const r = tool('maildir2mbox', [], { env, input: '' });
    assert.equal(r.code, 0, r.err);
    assert.equal(
      readFileSync(mbox, 'latin1'),
      'old\n\nFrom a-b@x.example Thu Jan 01 10:00:00 2026\nReturn-Path: <a b@x.example>\nDelivered-To: joe@example.com\n' +
        'Subject: one\n\n>From here\n>>From there\nlast\n\nFrom MAILER-DAEMON Fri Jan 02 10:00:00 2026\nReturn-Path: <>\n' +
        'Subject: two\n\nx\n\n',
    );
    assert.deepEqual([...readdirSync(join(md, 'new')), ...readdirSync(join(md, 'cur'))], []);
    assert.equal(statSync(mbox).mode & 0o777, 0o600);
    assert.ok(!existsSync(`${mbox}.tmp`));
  });
  void it('maildir2mbox with nothing new leaves $MAIL alone; without MAIL, MAILTMP or MAILDIR it is 111', () => {
    const before = readFileSync(mbox, 'latin1');
    assert.equal(tool('maildir2mbox', [], { env, input: '' }).code, 0);
    assert.equal(readFileSync(mbox, 'latin1'), before);
    const r = tool('maildir2mbox', [], { env: { MAILDIR: md }, input: '' });
    assert.equal(r.code, 111);
    assert.match(r.err, /maildir2mbox: fatal: MAIL not set/);
  });
});

void describe('<root>/bin', () => {
  void it('holds an executable script per tool that runs it by plain name from the PATH, as a .qmail line does', async () => {
    const written = await writeToolboxBin(root, [process.execPath, MAIN]);
    assert.ok(written.includes('preline') && written.includes('quail'));
    assert.equal(statSync(join(root, 'bin', 'except')).mode & 0o777, 0o755);
    assert.deepEqual(await writeToolboxBin(root, [process.execPath, MAIN]), [], 'unchanged scripts are left alone');
    // A program quail did not write (qmail's own, on a /var/qmail root) is never replaced; quail's stale ones are.
    writeFileSync(join(root, 'bin', 'maildirwatch'), '#!/bin/sh\necho qmail\n');
    writeFileSync(join(root, 'bin', 'forward'), '#!/bin/sh\n# forward: written by quail (src/toolbox); old\n');
    assert.deepEqual(await writeToolboxBin(root, [process.execPath, MAIN]), ['forward']);
    assert.equal(readFileSync(join(root, 'bin', 'maildirwatch'), 'utf8'), '#!/bin/sh\necho qmail\n');
    const fd = openSync(messageFile, 'r');
    try {
      const r = spawnSync('/bin/sh', ['-c', 'except grep -q "^Subject: hello" && echo never || echo "exit $?"'], {
        env: { PATH: `${root}/bin:/usr/bin:/bin` },
        stdio: [fd, 'pipe', 'pipe'],
        encoding: 'utf8',
      });
      assert.equal(r.stdout, 'exit 100\n', r.stderr);
    } finally {
      closeSync(fd);
    }
  });
});
