// Real deliveries as an unprivileged uid through LocalDeliverer's worker processes (needs root, as in CI).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maildirMake } from '../maildir/index.js';
import { deliverLocal, LocalDeliverer, wrongUidText } from './index.js';
import type { LocalJob } from './index.js';

const UID = 42001;
const GID = 42000;
const isRoot = process.getuid?.() === 0;
let dir = '';
let home = '';
let deliverer: LocalDeliverer;
let msgSeq = 0;

function file(name: string, text: string, mode = 0o644): void {
  const p = join(home, name);
  writeFileSync(p, text);
  chownSync(p, UID, GID);
  chmodSync(p, mode);
}

/** A queued message as root-only 0600 file, so the deliverer must hand the worker its own copy. */
function message(text: string): string {
  const p = join(dir, `msg${++msgSeq}`);
  writeFileSync(p, text, { mode: 0o600 });
  return p;
}

function job(
  ext: string,
  data = 'Subject: hi\n\nFrom here\n>From there\nbody\n',
  sender = 'sender@origin.test',
): LocalJob {
  return {
    user: 'qoalice',
    uid: UID,
    gid: GID,
    home,
    local: ext === '' ? 'qoalice' : `qoalice-${ext}`,
    dash: ext === '' ? '' : '-',
    ext,
    domain: 'local.test',
    sender,
    defaultDelivery: './Maildir/\n',
    messagePath: message(data),
    root: '/nonexistent-root',
  };
}

before(() => {
  if (!isRoot) return;
  dir = mkdtempSync(join(tmpdir(), 'quail-deliver-'));
  chmodSync(dir, 0o755);
  home = join(dir, 'home');
  mkdirSync(home);
  chownSync(home, UID, GID);
  chmodSync(home, 0o755);
  maildirMake(join(home, 'Maildir'), { uid: UID, gid: GID });
  deliverer = new LocalDeliverer({ path: '/usr/bin:/bin', idleMs: 2000 });
});

after(async () => {
  if (!isRoot) return;
  await deliverer.close();
  rmSync(dir, { recursive: true, force: true });
});

const skip = isRoot ? false : 'needs root to deliver as uid 42001';

void test('Maildir and mbox deliveries as the user (D.7.1, D.7.2)', { skip }, async () => {
  file('.qmail-files', './Maildir/\n./Mailbox\n');
  const r = await deliverer.deliver(job('files'));
  assert.deepEqual(r, { result: 'success', report: 'did 2+0+0\n' });
  const newDir = join(home, 'Maildir', 'new');
  const names = readdirSync(newDir);
  assert.equal(names.length, 1);
  const name = names[0] ?? '';
  assert.match(name, /^\d+\.\d+_\d+\./);
  const st = statSync(join(newDir, name));
  assert.equal(st.uid, UID);
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(
    readFileSync(join(newDir, name), 'latin1'),
    'Return-Path: <sender@origin.test>\nDelivered-To: qoalice-files@local.test\nSubject: hi\n\nFrom here\n>From there\nbody\n',
  );
  assert.deepEqual(readdirSync(join(home, 'Maildir', 'tmp')), []);
  const mbox = readFileSync(join(home, 'Mailbox'), 'latin1');
  assert.match(mbox, /^From sender@origin\.test (Sun|Mon|Tue|Wed|Thu|Fri|Sat) \w{3} \d{2} \d{2}:\d{2}:\d{2} \d{4}\n/);
  assert.equal(
    mbox.replace(/^[^\n]*\n/, ''),
    'Return-Path: <sender@origin.test>\nDelivered-To: qoalice-files@local.test\nSubject: hi\n\n>From here\n>>From there\nbody\n\n',
  );
  assert.equal(statSync(join(home, 'Mailbox')).uid, UID);
  assert.equal(statSync(join(home, 'Mailbox')).mode & 0o777, 0o600);
});

void test('mbox: missing final newline is supplied, then the blank separator (mb-006)', { skip }, async () => {
  file('.qmail-nonl', './nonl-box\n');
  const r = await deliverer.deliver(job('nonl', 'Subject: x\n\nno newline', ''));
  assert.equal(r.result, 'success');
  const text = readFileSync(join(home, 'nonl-box'), 'latin1');
  assert.match(text, /^From MAILER-DAEMON /);
  assert.ok(text.endsWith('Return-Path: <>\nDelivered-To: qoalice-nonl@local.test\nSubject: x\n\nno newline\n\n'));
});

void test(
  'program: exact environment, cwd, uid, no supplementary groups, umask 077, stdin is the raw message',
  { skip },
  async () => {
    file(
      '.qmail-env',
      '|env > env.out; id -u > id.out; id -G >> id.out; umask > umask.out; cat > stdin.out; echo done\n',
    );
    const data = 'Subject: env\n\nbody\n';
    const r = await deliverer.deliver(job('env', data));
    assert.deepEqual(r, { result: 'success', report: 'done\ndid 0+0+1\n' });
    const env = Object.fromEntries(
      readFileSync(join(home, 'env.out'), 'latin1')
        .trimEnd()
        .split('\n')
        .filter((l) => /^[A-Z0-9_]+=/.test(l))
        .map((l) => {
          const i = l.indexOf('=');
          return [l.slice(0, i), l.slice(i + 1)];
        }),
    );
    const ufline = env['UFLINE'] ?? '';
    assert.match(ufline, /^From sender@origin\.test \w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} \d{4}$/);
    // Multi-line values (DTLINE, RPLINE, UFLINE end in \n) leave an empty line after them in `env`'s output.
    assert.deepEqual(env, {
      PATH: '/usr/bin:/bin',
      PWD: home,
      USER: 'qoalice',
      HOME: home,
      LOCAL: 'qoalice-env',
      HOST: 'local.test',
      RECIPIENT: 'qoalice-env@local.test',
      DTLINE: 'Delivered-To: qoalice-env@local.test',
      SENDER: 'sender@origin.test',
      NEWSENDER: 'sender@origin.test',
      RPLINE: 'Return-Path: <sender@origin.test>',
      UFLINE: ufline,
      EXT: 'env',
      EXT2: '',
      EXT3: '',
      EXT4: '',
      HOST2: 'local',
      HOST3: 'local',
      HOST4: 'local',
    });
    assert.equal(readFileSync(join(home, 'id.out'), 'latin1'), `${UID}\n${GID}\n`);
    assert.equal(readFileSync(join(home, 'umask.out'), 'latin1'), '0077\n');
    assert.equal(readFileSync(join(home, 'stdin.out'), 'latin1'), data);
    assert.equal(statSync(join(home, 'env.out')).mode & 0o777, 0o600);
  },
);

void test('program exit codes 0/99/100/111/67/64 and a signal (D.7.3)', { skip }, async () => {
  const table: Array<[number, string]> = [
    [0, 'success'],
    [99, 'success'],
    [100, 'failure'],
    [111, 'deferral'],
    [67, 'deferral'],
    [64, 'failure'],
  ];
  for (const [code, result] of table) {
    file(`.qmail-e${code}`, `|echo out-${code}; exit ${code}\n&after@x.test\n`);
    const r = await deliverer.deliver(job(`e${code}`));
    assert.equal(r.result, result, `exit ${code}`);
    // exit 99 stops: the forward after it is not counted or sent
    assert.equal(
      r.report,
      code === 0 ? 'out-0\ndid 0+1+1\n' : code === 99 ? 'out-99\ndid 0+0+1\n' : `out-${code}\n`,
      `exit ${code}`,
    );
    assert.equal(r.forward !== undefined, code === 0, `exit ${code}`);
  }
  file('.qmail-kill', '|kill -9 $$\n');
  assert.deepEqual(await deliverer.deliver(job('kill')), {
    result: 'deferral',
    report: 'Aack, child crashed. (#4.3.0)\n',
  });
});

void test('forwards are returned, not queued; NEWSENDER from -owner (D.4, D.6.5, D.7.4)', { skip }, async () => {
  file('.qmail-fwd', '&a@remote.test\nb@remote.test\n# c\n');
  file('.qmail-fwd-owner', '');
  const r = await deliverer.deliver(job('fwd'));
  assert.deepEqual(r, {
    result: 'success',
    report: 'did 0+2+0\n',
    forward: {
      sender: 'qoalice-fwd-owner@local.test',
      recipients: ['a@remote.test', 'b@remote.test'],
      prepend: 'Delivered-To: qoalice-fwd@local.test\n',
      injector: { kind: 'uid', uid: UID },
    },
  });
  file('.qmail-fwd99', '&a@remote.test\n|exit 99\n&b@remote.test\n');
  const r99 = await deliverer.deliver(job('fwd99'));
  assert.deepEqual(r99.forward?.recipients, ['a@remote.test']);
  file('.qmail-fwdfail', '&a@remote.test\n|exit 100\n');
  assert.deepEqual(await deliverer.deliver(job('fwdfail')), { result: 'failure', report: '' });
});

void test('loop detection looks at the header only, byte for byte (D.5)', { skip }, async () => {
  file('.qmail-loop', '&elsewhere@x.test\n');
  const looping = await deliverer.deliver(job('loop', 'Delivered-To: qoalice-loop@local.test\nSubject: x\n\nbody\n'));
  assert.deepEqual(looping, {
    result: 'failure',
    report: 'This message is looping: it already has my Delivered-To line. (#5.4.6)\n',
  });
  const inBody = await deliverer.deliver(job('loop', 'Subject: x\n\nDelivered-To: qoalice-loop@local.test\n'));
  assert.equal(inBody.result, 'success');
  const otherCase = await deliverer.deliver(job('loop', 'Delivered-To: Qoalice-loop@local.test\n\nx\n'));
  assert.equal(otherCase.result, 'success');
  // before the mailbox lookup: a looping message to a missing extension is still "looping"
  const missing = await deliverer.deliver(job('nothere', 'Delivered-To: qoalice-nothere@local.test\n\nx\n'));
  assert.equal(missing.result, 'failure');
  assert.match(missing.report, /looping/);
});

void test('x bit, +list, blank first line, missing mailbox (D.3.6, D.6.2, D.6.4)', { skip }, async () => {
  file('.qmail-xbit', './Maildir/\n', 0o744);
  assert.deepEqual(await deliverer.deliver(job('xbit')), {
    result: 'deferral',
    report: 'Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)\n',
  });
  file('.qmail-xfwd', '&a@x.test\n', 0o744);
  assert.equal((await deliverer.deliver(job('xfwd'))).result, 'success');
  file('.qmail-plist', '|echo ran\n+list\n&b@x.test\n|echo no\n');
  assert.deepEqual(await deliverer.deliver(job('plist')), {
    result: 'deferral',
    report: 'ran\nUh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)\n',
  });
  file('.qmail-blank', '\n./Maildir/\n');
  assert.deepEqual(await deliverer.deliver(job('blank')), {
    result: 'deferral',
    report: 'Uh-oh: first line of .qmail file is blank. (#4.2.1)\n',
  });
  assert.deepEqual(await deliverer.deliver(job('nothere')), {
    result: 'failure',
    report: 'Sorry, no mailbox here by that name. (#5.1.1)\n',
  });
  file('.qmail-nomd', './NoSuch/\n');
  assert.deepEqual(await deliverer.deliver(job('nomd')), {
    result: 'deferral',
    report: 'Unable to chdir to maildir. (#4.2.1)\n',
  });
  file('.qmail-nodir', './nodir/Mailbox\n');
  assert.deepEqual(await deliverer.deliver(job('nodir')), {
    result: 'deferral',
    report: 'Unable to open ./nodir/Mailbox: file does not exist. (#4.2.1)\n',
  });
});

void test('home directory checks (D.1)', { skip }, async () => {
  file('.qmail-h', '|true\n');
  chmodSync(home, 0o1755);
  assert.deepEqual(await deliverer.deliver(job('h')), {
    result: 'deferral',
    report: 'Home directory is sticky: user is editing his .qmail file. (#4.2.1)\n',
  });
  chmodSync(home, 0o757);
  assert.deepEqual(await deliverer.deliver(job('h')), {
    result: 'deferral',
    report: 'Uh-oh: home directory is writable. (#4.7.0)\n',
  });
  chmodSync(home, 0o775);
  assert.equal((await deliverer.deliver(job('h'))).result, 'success');
  chmodSync(home, 0o755);
  assert.deepEqual(await deliverer.deliver({ ...job('h'), home: 'rel/home' }), {
    result: 'failure',
    report: 'qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty\n',
  });
  assert.deepEqual(await deliverer.deliver({ ...job('h'), home: join(dir, 'missing') }), {
    result: 'deferral',
    report: `Unable to switch to ${join(dir, 'missing')}: file does not exist. (#4.3.0)\n`,
  });
});

void test('privilege: uid 0 refused; in-process delivery refuses a uid that is not ours', { skip }, async () => {
  const rootJob = { ...job(''), uid: 0, gid: 0 };
  assert.deepEqual(await deliverer.deliver(rootJob), {
    result: 'deferral',
    report: 'Not allowed to perform deliveries as root.\n',
  });
  assert.deepEqual(await deliverLocal(job('')), { result: 'deferral', report: `${wrongUidText(0, UID)}\n` });
  assert.equal(
    wrongUidText(1000, UID),
    `quail runs as uid 1000 and cannot deliver as uid ${UID}; run quail as root or assign this mailbox to uid 1000 (#4.3.0)`,
  );
});

void test(
  'Maildir copies are the message byte for byte on both sides of the whole-read size (64 KiB), to every Maildir line, deliveries at once',
  { skip },
  async () => {
    mkdirSync(join(home, 'Second'), { recursive: true });
    chownSync(join(home, 'Second'), UID, GID);
    maildirMake(join(home, 'Second', 'Maildir'), { uid: UID, gid: GID });
    file('.qmail-sizes', './Maildir/\n./Second/Maildir/\n');
    const mds = [join(home, 'Maildir'), join(home, 'Second', 'Maildir')];
    const before = new Set(mds.flatMap((md) => readdirSync(join(md, 'new'))));
    const want = new Map<string, string>();
    // at once, so that a read buffer shared between deliveries (one worker's) would mix them up
    const results = await Promise.all(
      [20, 65_535, 65_536, 65_537, 200_003].map((size) => {
        const head = `Subject: sizes ${size}\n\n`;
        // bytes that vary, so a slice off by one or another delivery's bytes show (ASCII: the helper writes UTF-8)
        const body = Buffer.alloc(size - head.length);
        for (let i = 0; i < body.length; i++) body[i] = 32 + ((i * 7 + size) % 95);
        const data = head + body.toString('latin1');
        want.set(`${size}`, `Return-Path: <sender@origin.test>\nDelivered-To: qoalice-sizes@local.test\n${data}`);
        return deliverer.deliver(job('sizes', data));
      }),
    );
    for (const r of results) assert.deepEqual(r, { result: 'success', report: 'did 2+0+0\n' });
    for (const md of mds) {
      const got = new Map<string, string>();
      for (const n of readdirSync(join(md, 'new')).filter((x) => !before.has(x))) {
        const text = readFileSync(join(md, 'new', n), 'latin1');
        got.set(/^Subject: sizes (\d+)$/m.exec(text)?.[1] ?? n, text);
      }
      assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `one file per message in ${md}`);
      for (const [size, text] of want) {
        assert.equal(got.get(size)?.length, text.length, `${size} bytes: length in ${md}`);
        assert.ok(got.get(size) === text, `${size} bytes: the copy in ${md} differs from the message`);
      }
    }
  },
);
