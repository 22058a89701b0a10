// qmail-lspawn in the root parent: what the send child may ask, and what root derives and checks itself.
// tier: system (needs quail start)
import assert from 'node:assert/strict';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LocalDeliverer, type LocalJob, type LocalResult } from '../local/index.js';
import { newu, tablePasswd } from '../users/index.js';
import { Lspawn, parseRequest } from './lspawn.js';

const ID = '0lb3k9a2x-3f9q0c1m2n4p';
const LINK_ID = '0lb3k9a2x-3f9q0c1m2n4q';
const ALIEN_ID = '0lb3k9a2x-3f9q0c1m2n4r';
const amRoot = process.getuid?.() === 0;
/** As root the queue belongs to a made-up account (its files are chowned to it); otherwise to us. */
const QUEUE_UID = amRoot ? 4321 : (process.getuid?.() ?? 0);
const OTHER_UID = 4322;

/** Records each job instead of running it; `seen` runs while the job's message file still exists. */
class Capture extends LocalDeliverer {
  readonly jobs: LocalJob[] = [];
  constructor(private readonly seen: (job: LocalJob) => void = () => undefined) {
    super();
  }
  override deliver(job: LocalJob): Promise<LocalResult> {
    this.jobs.push(job);
    this.seen(job);
    return Promise.resolve({ result: 'success', report: 'did 1+0+0\n' });
  }
}

function world(): { root: string; mess: (id: string) => string } {
  const root = mkdtempSync(join(tmpdir(), 'quail-lspawn-test-'));
  mkdirSync(join(root, 'control'));
  mkdirSync(join(root, 'users'));
  mkdirSync(join(root, 'queue', 'mess'), { recursive: true });
  writeFileSync(join(root, 'control', 'me'), 'mail.test\n');
  writeFileSync(join(root, 'control', 'defaultdelivery'), './Mailbox\n');
  writeFileSync(
    join(root, 'users', 'assign'),
    [
      `=same:q:${QUEUE_UID}:${QUEUE_UID}:/home/same:::`,
      `=other:o:${OTHER_UID}:${OTHER_UID}:/home/other:::`,
      '=boss:root:0:0:/root:::',
      `+v.test-:q:${QUEUE_UID}:${QUEUE_UID}:/home/v:-::`,
      '.',
    ]
      .map((l) => `${l}\n`)
      .join(''),
  );
  newu(root);
  const mess = (id: string): string => join(root, 'queue', 'mess', id);
  writeFileSync(mess(ID), 'Subject: lspawn\n\nhello\n', { mode: 0o600 });
  if (amRoot) chownSync(mess(ID), QUEUE_UID, QUEUE_UID);
  return { root, mess };
}

const silent = { event: (): void => undefined };

void test('lspawn requests: golden table of what is refused before anything is looked up', () => {
  const ok = { msg: ID, local: 'same', domain: 'mail.test', sender: 'a@b' };
  const table: Array<[unknown, string | null]> = [
    [ok, null],
    [{ ...ok, sender: '' }, null], // the null sender of a bounce
    [null, 'not an object'],
    ['x', 'not an object'],
    [{ ...ok, msg: '../../../etc/shadow' }, 'msg is not a queue id'],
    [{ ...ok, msg: `${ID}/x` }, 'msg is not a queue id'],
    [{ ...ok, msg: 7 }, 'msg is not a queue id'],
    [{ ...ok, local: '' }, 'local is not a local part'],
    [{ ...ok, local: 'a\0b' }, 'local is not a local part'],
    [{ ...ok, local: 'x'.repeat(4097) }, 'local is not a local part'],
    [{ ...ok, domain: undefined }, 'domain is not a string'],
    [{ ...ok, sender: ['a'] }, 'sender is not a string'],
  ];
  for (const [input, why] of table) {
    const got = parseRequest(input);
    if (why === null) assert.deepEqual(got, input, JSON.stringify(input));
    else assert.equal(got, why, JSON.stringify(input));
  }
});

void test('lspawn derives the job itself: assignment from users/cdb, its own defaultdelivery and message path', async () => {
  const w = world();
  const capture = new Capture();
  const l = new Lspawn({ root: w.root, queueUid: QUEUE_UID, log: silent, deliverer: capture, passwd: tablePasswd([]) });
  try {
    // Fields a child has no say in are ignored, whatever it sends.
    const r = await l.deliver({
      msg: ID,
      local: 'v.test-joe',
      domain: 'v.test',
      sender: 's@x',
      uid: 0,
      home: '/root',
      defaultDelivery: '|sh -c id',
      messagePath: '/etc/shadow',
      root: '/',
    });
    assert.deepEqual(r, { result: 'success', report: 'did 1+0+0\n' });
    assert.deepEqual(capture.jobs, [
      {
        user: 'q',
        uid: QUEUE_UID,
        gid: QUEUE_UID,
        home: '/home/v',
        local: 'v.test-joe',
        dash: '-',
        ext: 'joe',
        domain: 'v.test',
        sender: 's@x',
        defaultDelivery: './Mailbox\n',
        messagePath: w.mess(ID),
        root: w.root,
      },
    ]);
  } finally {
    await l.close();
    rmSync(w.root, { recursive: true, force: true });
  }
});

void test("lspawn refuses: uid 0, unknown accounts, links out of the queue, files not the queue account's", async () => {
  const w = world();
  const events: string[] = [];
  const capture = new Capture();
  const l = new Lspawn({
    root: w.root,
    queueUid: QUEUE_UID,
    log: { event: (n, f) => events.push(`${n} ${String(f['reason'])}`) },
    deliverer: capture,
    passwd: tablePasswd([]),
  });
  try {
    const req = (local: string, msg = ID): Record<string, string> => ({
      msg,
      local,
      domain: 'mail.test',
      sender: 's@x',
    });
    assert.deepEqual(await l.deliver(req('boss')), {
      result: 'deferral',
      report: 'Not allowed to perform deliveries as root.\n',
    });
    assert.deepEqual(await l.deliver(req('nobody-here')), {
      result: 'deferral',
      report: 'Unable to find alias user!\n',
    });
    symlinkSync('/etc/passwd', w.mess(LINK_ID));
    assert.deepEqual(await l.deliver(req('same', LINK_ID)), {
      result: 'deferral',
      report: `qmail-lspawn refused the request: queue/mess/${LINK_ID} is a symbolic link. (#4.3.0)\n`,
    });
    assert.deepEqual(await l.deliver(req('same', '0lb3k9a2x-000000000000')), {
      result: 'deferral',
      report: 'Unable to read message. (#4.3.0)\n',
    });
    writeFileSync(w.mess(ALIEN_ID), 'x\n');
    if (amRoot) chownSync(w.mess(ALIEN_ID), 0, 0);
    const alien = new Lspawn({
      root: w.root,
      queueUid: amRoot ? QUEUE_UID : QUEUE_UID + 1,
      log: { event: (n, f) => events.push(`${n} ${String(f['reason'])}`) },
      deliverer: capture,
      passwd: tablePasswd([]),
    });
    const r = await alien.deliver(req('same', amRoot ? ALIEN_ID : ID));
    assert.equal(r.result, 'deferral');
    assert.match(
      r.report,
      /^qmail-lspawn refused the request: queue\/mess\/\S+ is not a regular file of uid \d+\. \(#4\.3\.0\)\n$/,
    );
    await alien.close();
    assert.deepEqual(await l.deliver({ msg: '../x', local: 'same', domain: 'd', sender: '' }), {
      result: 'deferral',
      report: 'qmail-lspawn refused the request: msg is not a queue id. (#4.3.0)\n',
    });
    assert.deepEqual(capture.jobs, [], 'nothing was delivered');
    assert.equal(events.filter((e) => e.startsWith('lspawn.refused')).length, 3, events.join('\n'));
  } finally {
    await l.close();
    rmSync(w.root, { recursive: true, force: true });
  }
});

void test(
  'as root: another uid gets a private 0400 copy made from the checked descriptor, removed afterwards',
  { skip: amRoot ? false : 'needs root' },
  async () => {
    const w = world();
    let copy: { path: string; uid: number; mode: number; text: string } | undefined;
    const capture = new Capture((job) => {
      const st = statSync(job.messagePath);
      copy = {
        path: job.messagePath,
        uid: st.uid,
        mode: st.mode & 0o777,
        text: readFileSync(job.messagePath, 'latin1'),
      };
    });
    const l = new Lspawn({
      root: w.root,
      queueUid: QUEUE_UID,
      log: silent,
      deliverer: capture,
      passwd: tablePasswd([]),
    });
    try {
      const r = await l.deliver({ msg: ID, local: 'other', domain: 'mail.test', sender: 's@x' });
      assert.equal(r.result, 'success');
      assert.equal(capture.jobs[0]?.uid, OTHER_UID);
      assert.ok(copy);
      assert.notEqual(copy.path, w.mess(ID));
      assert.deepEqual(
        { uid: copy.uid, mode: copy.mode, text: copy.text },
        { uid: OTHER_UID, mode: 0o400, text: 'Subject: lspawn\n\nhello\n' },
      );
      assert.equal(existsSync(copy.path), false, 'the copy is removed after the delivery');
    } finally {
      await l.close();
      rmSync(w.root, { recursive: true, force: true });
    }
  },
);

void test('lspawn reads control/localworkers at start and again on reload (0 or missing: one per two CPUs, 1 to 16)', async () => {
  const w = world();
  const file = join(w.root, 'control', 'localworkers');
  writeFileSync(file, '3\n');
  const l = new Lspawn({ root: w.root, queueUid: QUEUE_UID, log: silent, passwd: tablePasswd([]) });
  try {
    assert.equal(l.workersPerUid, 3);
    writeFileSync(file, '1\n');
    assert.equal(l.workersPerUid, 3, 'not before the reload');
    l.reload();
    assert.equal(l.workersPerUid, 1);
    writeFileSync(file, '500\n');
    l.reload();
    assert.equal(l.workersPerUid, 64, "the catalogue's cap");
    const cpus = Math.max(1, Math.min(Math.floor(availableParallelism() / 2), 16));
    writeFileSync(file, '0\n');
    l.reload();
    assert.equal(l.workersPerUid, cpus);
    rmSync(file);
    l.reload();
    assert.equal(l.workersPerUid, cpus);
  } finally {
    await l.close();
    rmSync(w.root, { recursive: true, force: true });
  }
});
