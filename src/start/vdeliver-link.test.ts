// vpopmail's per-user .qmail through the in-process vdeliver (local's hook over the directory): forwards, programs,
// tier: system (needs swaks)
// comments, loops, quota; through localDeliverer's workers as root; and through `quail start`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDomain, createMailbox, openDirectory, type Directory } from '../directory/index.js';
import { runQmailLocal, VdeliverHook, type LocalRun } from '../local/index.js';
import { UniqueNamer } from '../maildir/index.js';
import { initOwner, quail, startProcess, waitFor, type QuailProcess } from '../../test/support/start.js';
import { localDeliverer, openLookup } from './vdeliver-link.js';

const UID = 42101;
const GID = 42100;
const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (the domain account is uid 42101)';
const SENDER = 'ann@other.example';

interface World {
  root: string;
  dir: Directory;
  dom: string;
  hook: VdeliverHook;
  namer: UniqueNamer;
  seq: number;
}
let w: World;

before(async () => {
  if (!isRoot) return;
  const root = mkdtempSync(join(tmpdir(), 'quail-vdhook-'));
  chmodSync(root, 0o755);
  const dir = await openDirectory({ root });
  await createDomain({ root, dir }, { name: 'example.com', account: { user: 'qvd', uid: UID, gid: GID } });
  for (const u of ['joe', 'ann', 'bob', 'cat', 'dan', 'eve', 'fay'])
    await createMailbox({ root, dir }, { address: `${u}@example.com`, password: 'pw' });
  chmodSync(join(root, 'directory.sqlite'), 0o644); // the worker (uid 42101) reads it
  w = {
    root,
    dir,
    dom: join(root, 'domains', 'example.com'),
    hook: new VdeliverHook(openLookup),
    namer: new UniqueNamer(),
    seq: 0,
  };
});

after(async () => {
  if (!isRoot) return;
  await w.hook.close();
  await w.dir.close();
  rmSync(w.root, { recursive: true, force: true });
});

/** The mailbox's .qmail, owned by the domain's account like a file the user wrote. */
function dotQmail(box: string, text: string): void {
  const p = join(w.dom, box, '.qmail');
  writeFileSync(p, text, { mode: 0o644 });
  chownSync(p, UID, GID);
}

function message(text = 'Subject: hi\n\nhello\n'): string {
  const p = join(w.root, `msg${++w.seq}`);
  writeFileSync(p, text, { mode: 0o644 });
  return p;
}

/** What the local worker does for `box@example.com`: qmail-local on the domain's `.qmail-default` with the vdeliver hook. */
function deliver(box: string, messagePath = message()): Promise<LocalRun> {
  return runQmailLocal(
    {
      user: 'qvd',
      home: w.dom,
      local: `example.com-${box}`,
      dash: '-',
      ext: box,
      domain: 'example.com',
      sender: SENDER,
      defaultDelivery: './Maildir/\n',
    },
    {
      doit: true,
      messagePath,
      path: '/usr/bin:/bin',
      namer: w.namer,
      injector: { kind: 'uid', uid: UID },
      programHook: w.hook.run,
    },
  );
}

const report = (r: LocalRun): string => Buffer.concat(r.output.map((c) => c.data)).toString('latin1');
const inbox = (box: string): string[] => {
  const d = join(w.dom, box, 'Maildir', 'new');
  return readdirSync(d)
    .sort()
    .map((f) => readFileSync(join(d, f), 'latin1'));
};

void test('.qmail with a forward and the own Maildir: both, one forward for the queue', { skip }, async () => {
  dotQmail('joe', '# joe keeps a copy\n&bob@other.example\n./Maildir/\n');
  const r = await deliver('joe');
  assert.equal(r.exitCode, 0, report(r));
  assert.deepEqual(r.forward, {
    sender: SENDER,
    recipients: ['bob@other.example'],
    prepend: 'Delivered-To: example.com-joe@example.com\n',
    injector: { kind: 'uid', uid: UID },
  });
  assert.deepEqual(inbox('joe'), [
    `Return-Path: <${SENDER}>\nDelivered-To: example.com-joe@example.com\nSubject: hi\n\nhello\n`,
  ]);
  assert.match(report(r), /did 1\+1\+0\ndid 0\+0\+1\n$/);
});

void test(
  '.qmail program line: qmail-local environment, message on stdin, in the home; 99 stops, 100 bounces, 111 defers',
  { skip },
  async () => {
    const home = join(w.dom, 'ann');
    dotQmail(
      'ann',
      '|echo "$RECIPIENT|$SENDER|$EXT|$LOCAL|$HOST|$HOME|$USER|$NEWSENDER|$DEFAULT" > env.out; cat > copy.out\n',
    );
    const r = await deliver('ann');
    assert.equal(r.exitCode, 0, report(r));
    assert.equal(
      readFileSync(join(home, 'env.out'), 'latin1'),
      `example.com-ann@example.com|${SENDER}|ann|example.com-ann|example.com|${home}|qvd|${SENDER}|ann\n`,
    );
    assert.equal(readFileSync(join(home, 'copy.out'), 'latin1'), 'Subject: hi\n\nhello\n');
    assert.deepEqual(inbox('ann'), [], 'no Maildir line, no Maildir delivery');

    dotQmail('ann', '|exit 99\n./Maildir/\n');
    assert.equal((await deliver('ann')).exitCode, 0);
    assert.deepEqual(inbox('ann'), [], '99: the rest of the file is skipped');

    dotQmail('ann', '|echo no such user; exit 100\n./Maildir/\n');
    const hard = await deliver('ann');
    assert.deepEqual([hard.exitCode, /no such user/.test(report(hard))], [100, true], report(hard));
    dotQmail('ann', '|echo try later; exit 111\n');
    const soft = await deliver('ann');
    assert.deepEqual([soft.exitCode, /try later/.test(report(soft))], [111, true], report(soft));
    dotQmail('ann', '|exit 3\n');
    assert.equal((await deliver('ann')).exitCode, 111, 'other codes are temporary');
    assert.deepEqual(inbox('ann'), []);
  },
);

void test('.qmail with only comments (or empty): the Maildir, as with no .qmail', { skip }, async () => {
  dotQmail('bob', '# nothing here yet\n\n#  still nothing\n');
  const r = await deliver('bob');
  assert.equal(r.exitCode, 0, report(r));
  dotQmail('bob', '');
  const r2 = await deliver('bob');
  assert.equal(r2.exitCode, 0, report(r2));
  assert.equal(inbox('bob').length, 2);
});

void test(
  '.qmail forwarding to its own address: the forwarded copy comes back and is refused as a loop',
  { skip },
  async () => {
    dotQmail('cat', '&cat@example.com\n');
    const r = await deliver('cat');
    assert.equal(r.exitCode, 0, report(r));
    assert.deepEqual(r.forward?.recipients, ['cat@example.com']);
    // The queue prepends the Delivered-To line (prepend) to the forwarded copy; its delivery finds it.
    const again = await deliver('cat', message(`${r.forward?.prepend ?? ''}Subject: hi\n\nhello\n`));
    assert.equal(again.exitCode, 100);
    assert.match(report(again), /looping.*#5\.4\.6/);
    // A vdeliver line in the mailbox's own .qmail would hand the message back to itself: deferred with the reason.
    dotQmail('cat', "| quail vdeliver '' bounce-no-mailbox\n");
    const back = await deliver('cat');
    assert.equal(back.exitCode, 111);
    assert.match(report(back), /cannot hand its mail back to vdeliver/);
  },
);

void test(
  'quota through the .qmail: the own-Maildir line (relative or absolute) is checked first, counted, warned at 90 %',
  { skip },
  async () => {
    const md = join(w.dom, 'dan', 'Maildir');
    const size = `Return-Path: <${SENDER}>\nDelivered-To: example.com-dan@example.com\nSubject: hi\n\nhello\n`.length;
    await w.dir.updateMailbox('example.com', 'dan', { quotaBytes: size * 10 });
    dotQmail('dan', '|touch ran\n./Maildir/\n');
    for (let i = 0; i < 8; i++) {
      const r = await deliver('dan');
      assert.equal(r.exitCode, 0, report(r));
    }
    dotQmail('dan', `|touch ran\n${md}/\n`);
    assert.equal((await deliver('dan')).exitCode, 0);
    const mails = inbox('dan');
    assert.equal(mails.filter((m) => /^Subject: Your mailbox is 90% full$/m.test(m)).length, 1, 'the warning at 90 %');
    assert.match(readFileSync(join(md, 'maildirsize'), 'latin1'), new RegExp(`^${size * 10}S\\n`));
    // Full (9 messages + the warning): deferred before any line runs, so the program does not run twice on the retry.
    rmSync(join(w.dom, 'dan', 'ran'));
    const full = await deliver('dan');
    assert.equal(full.exitCode, 111);
    assert.match(report(full), /over its quota.*#4\.2\.2/);
    assert.equal(existsSync(join(w.dom, 'dan', 'ran')), false);
    // A Maildir elsewhere is not the mailbox's: no quota for it.
    const other = join(w.root, 'elsewhere');
    spawnSync('mkdir', ['-p', `${other}/Maildir/new`, `${other}/Maildir/cur`, `${other}/Maildir/tmp`]);
    dotQmail('dan', `${other}/Maildir/\n`);
    assert.equal((await deliver('dan')).exitCode, 0);
    assert.equal(readdirSync(join(other, 'Maildir', 'new')).length, 1);
  },
);

void test("the directory's forwarding wins over the .qmail file", { skip }, async () => {
  dotQmail('eve', '|touch ran\n');
  await w.dir.updateMailbox('example.com', 'eve', { forward: ['away@other.example'], keepCopy: false });
  const r = await deliver('eve');
  assert.deepEqual([r.exitCode, r.forward?.recipients], [0, ['away@other.example']]);
  assert.equal(existsSync(join(w.dom, 'eve', 'ran')), false);
});

void test(
  "through localDeliverer's workers as root: the .qmail program runs as the domain's account",
  { skip },
  async () => {
    dotQmail('fay', '|id -u > uid.out\n./Maildir/\n');
    const d = localDeliverer({ path: '/usr/bin:/bin', idleMs: 2000 });
    try {
      const r = await d.deliver({
        user: 'qvd',
        uid: UID,
        gid: GID,
        home: w.dom,
        local: 'example.com-fay',
        dash: '-',
        ext: 'fay',
        domain: 'example.com',
        sender: SENDER,
        defaultDelivery: './Maildir/\n',
        messagePath: message(),
        root: w.root,
      });
      assert.equal(r.result, 'success', r.report);
    } finally {
      await d.close();
    }
    assert.equal(readFileSync(join(w.dom, 'fay', 'uid.out'), 'latin1'), `${UID}\n`);
    assert.equal(inbox('fay').length, 1);
  },
);

let q: QuailProcess | undefined;
after(() => q?.killGroup());

void test(
  'end to end: SMTP to a mailbox whose .qmail forwards to another mailbox lands in both',
  { skip },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-vdhook-e2e-'));
    chmodSync(root, 0o755);
    try {
      quail(['init', '--root', root, '--me', 'mx.test']);
      quail(['domain', 'add', 'example.com', '--root', root]);
      quail(['user', 'add', 'joe@example.com', '--password', 'x', '--root', root]);
      quail(['user', 'add', 'ann@example.com', '--password', 'y', '--root', root]);
      const owner = initOwner(root);
      const qm = join(root, 'domains', 'example.com', 'joe', '.qmail');
      writeFileSync(qm, '&ann@example.com\n./Maildir/\n', { mode: 0o644 });
      chownSync(qm, owner.uid, owner.gid);
      q = await startProcess(root);
      const state = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as {
        listeners: Array<{ port: number; kind: string }>;
      };
      const port = state.listeners.find((l) => l.kind === 'smtp')?.port;
      assert.ok(port !== undefined);
      const s = spawnSync(
        'swaks',
        [
          '--server',
          `127.0.0.1:${port}`,
          '--from',
          'zed@sender.test',
          '--to',
          'joe@example.com',
          '--h-Subject',
          'via-qmail',
          '--body',
          'forwarded body',
          '--helo',
          'client.test',
        ],
        { encoding: 'utf8' },
      );
      assert.equal(s.status, 0, s.stdout + s.stderr);
      const box = (u: string): string => join(root, 'domains', 'example.com', u, 'Maildir', 'new');
      const p = q;
      await waitFor(
        () => readdirSync(box('joe')).length > 0 && readdirSync(box('ann')).length > 0,
        30_000,
        () => p.log(),
      );
      const read = (u: string): string => readFileSync(join(box(u), readdirSync(box(u))[0] ?? ''), 'latin1');
      assert.match(
        read('joe'),
        /^Return-Path: <zed@sender\.test>\nDelivered-To: example\.com-joe@example\.com\n[^]*Subject: via-qmail\n/,
      );
      assert.match(
        read('ann'),
        /^Return-Path: <zed@sender\.test>\nDelivered-To: example\.com-ann@example\.com\n[^]*Delivered-To: example\.com-joe@example\.com\n[^]*Subject: via-qmail\n/,
      );
      q.child.kill('SIGTERM');
      assert.equal((await q.exited).code, 0, q.log());
    } finally {
      q?.killGroup();
      rmSync(root, { recursive: true, force: true });
    }
  },
);
