// `quail vdeliver` run as a real qmail-local runs the .qmail-default line: as the domain's account, in the domain's
// directory, with qmail-local's environment and the message on stdin — a mailbox's .qmail and alias programs followed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { headerLines, programEnv } from '../local/index.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.js');
const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : "needs root (quail vdeliver runs as the domain's account, as under qmail-local)";
const SENDER = 'zed@sender.example';

interface World {
  root: string;
  dom: string;
  user: string;
  uid: number;
  gid: number;
}
let w: World;

function quail(args: string[], input = ''): string {
  const r = spawnSync(process.execPath, [MAIN, ...args], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

before(() => {
  if (!isRoot) return;
  const root = mkdtempSync(join(tmpdir(), 'quail-vdeliver-cli-'));
  chmodSync(root, 0o755); // the domain's account must reach domains/
  quail(['init', '--root', root, '--me', 'mx.test']);
  quail(['domain', 'add', 'example.com', '--root', root]);
  for (const u of ['joe', 'ann', 'bob']) quail(['user', 'add', `${u}@example.com`, '--password', 'pw', '--root', root]);
  // users/assign says who qmail-local runs the domain's .qmail-default as: +example.com-:USER:UID:GID:HOME:-::
  const line = readFileSync(join(root, 'users', 'assign'), 'latin1')
    .split('\n')
    .find((l) => l.startsWith('+example.com-:'));
  const [, user = '', uid = '', gid = ''] = (line ?? '').split(':');
  w = { root, dom: join(root, 'domains', 'example.com'), user, uid: Number(uid), gid: Number(gid) };
  assert.ok(w.uid > 0 && w.gid > 0, `assign line ${line}`);
});

after(() => {
  if (isRoot) rmSync(w.root, { recursive: true, force: true });
});

/** A mailbox's .qmail, written by its user (the domain's account). */
function dotQmail(box: string, text: string): void {
  const p = join(w.dom, box, '.qmail');
  writeFileSync(p, text, { mode: 0o644 });
  chownSync(p, w.uid, w.gid);
}

/**
 * What qmail-local does for `ext@example.com` with the domain's `.qmail-default` line: /bin/sh runs `quail vdeliver ''
 * bounce-no-mailbox` as the assign line's uid/gid, in the domain's directory, with exactly qmail-local's environment
 * (src/local/env.ts builds it; no QUAIL_ROOT, no --root: the root comes from the working directory).
 */
function vdeliver(ext: string, message = `Subject: for ${ext}\n\nbody\n`): SpawnSyncReturns<string> {
  const args = {
    user: w.user,
    home: w.dom,
    local: `example.com-${ext}`,
    dash: '-',
    ext,
    domain: 'example.com',
    sender: SENDER,
    defaultDelivery: './Maildir/\n',
  };
  const env = programEnv(args, headerLines(args, new Date()), {
    newSender: SENDER,
    defaultPart: ext,
    path: '/usr/bin:/bin',
  });
  return spawnSync(process.execPath, [MAIN, 'vdeliver', '', 'bounce-no-mailbox'], {
    input: message,
    encoding: 'utf8',
    cwd: w.dom,
    uid: w.uid,
    gid: w.gid,
    env,
    timeout: 60_000,
  });
}

const inbox = (box: string): string[] => {
  const d = join(w.dom, box, 'Maildir', 'new');
  return readdirSync(d)
    .sort()
    .map((f) => readFileSync(join(d, f), 'latin1'));
};

void test(
  "a mailbox's .qmail is followed: a line naming another Maildir gets the message, a program runs in the home",
  { skip },
  () => {
    const joe = join(w.dom, 'joe');
    dotQmail(
      'joe',
      `# joe reads mail in ann's box\n${w.dom}/ann/Maildir/\n|echo "$RECIPIENT|$EXT|$SENDER|$HOME|$(id -u)" > env.out\n`,
    );
    const r = vdeliver('joe');
    assert.equal(r.status, 0, `exit ${r.status}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, 'did 1+0+1\n');
    assert.deepEqual(inbox('ann'), [
      `Return-Path: <${SENDER}>\nDelivered-To: example.com-joe@example.com\nSubject: for joe\n\nbody\n`,
    ]);
    assert.deepEqual(inbox('joe'), [], "the .qmail does not name joe's own Maildir");
    assert.equal(
      readFileSync(join(joe, 'env.out'), 'latin1'),
      `example.com-joe@example.com|joe|${SENDER}|${joe}|${w.uid}\n`,
    );
  },
);

void test("exit codes are qmail's: a .qmail program's 100 bounces (100), 111 and others defer (111)", { skip }, () => {
  dotQmail('bob', '|echo no such person; exit 100\n./Maildir/\n');
  const hard = vdeliver('bob');
  assert.deepEqual([hard.status, hard.stdout], [100, 'no such person\n']);
  dotQmail('bob', '|echo disk full; exit 111\n./Maildir/\n');
  const soft = vdeliver('bob');
  assert.deepEqual([soft.status, soft.stdout], [111, 'disk full\n']);
  dotQmail('bob', '|exit 3\n');
  assert.equal(vdeliver('bob').status, 111);
  // Handing the message back to vdeliver from the mailbox's own .qmail is refused (temporary, with the reason).
  dotQmail('bob', "| quail vdeliver '' bounce-no-mailbox\n");
  const back = vdeliver('bob');
  assert.equal(back.status, 111);
  assert.match(back.stdout + back.stderr, /cannot hand its mail back to vdeliver/);
  assert.deepEqual(inbox('bob'), []);
  // Without a .qmail: the Maildir; an unknown address: the line's policy.
  rmSync(join(w.dom, 'bob', '.qmail'));
  assert.equal(vdeliver('bob').status, 0);
  assert.equal(inbox('bob').length, 1);
  const unknown = vdeliver('nobody');
  assert.equal(unknown.status, 100);
  assert.match(unknown.stdout, /no mailbox here by that name.*#5\.1\.1/);
});

void test(
  "an alias's |program target runs through local's runner: in the domain's directory, message on stdin",
  { skip },
  () => {
    quail(['alias', 'add', 'info@example.com', '|cat > info.out; echo "$HOME" > info.home', '--root', w.root]);
    quail(['alias', 'add', 'gone@example.com', '|echo gone for good; exit 100', '--root', w.root]);
    const r = vdeliver('info', 'Subject: to info\n\nhello\n');
    assert.equal(r.status, 0, `exit ${r.status}: ${r.stdout}${r.stderr}`);
    assert.equal(readFileSync(join(w.dom, 'info.out'), 'latin1'), 'Subject: to info\n\nhello\n');
    assert.equal(readFileSync(join(w.dom, 'info.home'), 'latin1'), `${w.dom}\n`);
    assert.equal(statSync(join(w.dom, 'info.out')).mode & 0o777, 0o600, 'umask 077, as local runs every program');
    const gone = vdeliver('gone');
    assert.deepEqual([gone.status, gone.stdout], [100, 'gone for good\n']);
    assert.ok(!existsSync(join(w.dom, 'gone.out')));
  },
);
