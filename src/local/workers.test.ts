// LocalDeliverer with several worker processes per (uid, gid), as root: the jobs of one uid spread over up to N
// real forked workers, each delivered once; N=1 keeps one worker; a worker killed mid-job defers its own jobs only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupMembers } from '../../test/support/proc.js';
import { waitFor } from '../../test/support/wait.js';
import { maildirMake } from '../maildir/index.js';
import { LocalDeliverer } from './index.js';
import type { LocalJob, LocalResult } from './index.js';

const UID = 42301;
const GID = 42300;
const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (the workers run as uid 42301)';
let dir = '';
let seq = 0;

/** A directory owned by the job's uid. */
function ownDir(path: string): string {
  mkdirSync(path, { recursive: true });
  chownSync(path, UID, GID);
  chmodSync(path, 0o755);
  return path;
}

/** A home with a Maildir (the default delivery), fresh for each test. */
function mailHome(name: string): string {
  const home = ownDir(join(dir, name));
  maildirMake(join(home, 'Maildir'), { uid: UID, gid: GID });
  return home;
}

function job(home: string, body: string): LocalJob {
  // root-only 0600, as a queued message: the deliverer hands each worker a private copy
  const messagePath = join(dir, `msg${++seq}`);
  writeFileSync(messagePath, `Subject: ${body}\n\n${body}\n`, { mode: 0o600 });
  return {
    user: 'qworkers',
    uid: UID,
    gid: GID,
    home,
    local: 'qworkers',
    dash: '',
    ext: '',
    domain: 'local.test',
    sender: 'a@b.test',
    defaultDelivery: './Maildir/\n',
    messagePath,
    root: '/nonexistent-root',
  };
}

/** The messages in a Maildir's new/: each file's body line and the pid in its unique name (TIME.PID_SEQ.HOST). */
function delivered(home: string): { bodies: string[]; pids: Set<number>; pidOf: Map<string, number> } {
  const dirNew = join(home, 'Maildir', 'new');
  const pidOf = new Map<string, number>();
  const bodies: string[] = [];
  for (const n of readdirSync(dirNew)) {
    const m = /^\d+\.(\d+)_/.exec(n);
    assert.ok(m, `a Maildir name with a pid: ${n}`);
    const body = readFileSync(join(dirNew, n), 'utf8').trimEnd().split('\n').at(-1) ?? '';
    bodies.push(body);
    pidOf.set(body, Number(m[1]));
  }
  return { bodies: bodies.sort(), pids: new Set(pidOf.values()), pidOf };
}

const range = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `${tag}-${i}`);

before(() => {
  if (!isRoot) return;
  dir = mkdtempSync(join(tmpdir(), 'quail-workers-'));
  chmodSync(dir, 0o755);
});

after(() => {
  if (isRoot) rmSync(dir, { recursive: true, force: true });
});

void test(
  'N=3: the jobs of one uid go to three worker processes, each job delivered exactly once',
  { skip },
  async () => {
    const home = mailHome('three');
    const d = new LocalDeliverer({ path: '/usr/bin:/bin', workersPerUid: 3, idleMs: 600_000 });
    try {
      // all sent in one turn: no job is answered before the last is handed out, so every worker has one pending when
      // the next is chosen and the pool grows to its limit (a pool of one worker per uid would show one pid)
      const bodies = range(30, 'three');
      const results = await Promise.all(bodies.map((b) => d.deliver(job(home, b))));
      assert.deepEqual(
        results.map((r) => r.result),
        bodies.map(() => 'success'),
      );
      const got = delivered(home);
      assert.deepEqual(got.bodies, [...bodies].sort());
      assert.equal(got.pids.size, 3, `three worker pids, got ${[...got.pids].join(' ')}`);
      assert.ok(!got.pids.has(process.pid), 'delivered by the workers, not in this process');

      // a lower limit (SIGHUP): the idle workers above it stop, and the next burst goes to one of the old ones
      d.setWorkersPerUid(1);
      assert.equal(d.workersPerUid, 1);
      const more = range(10, 'one-after');
      const again = await Promise.all(more.map((b) => d.deliver(job(home, b))));
      assert.ok(again.every((r) => r.result === 'success'));
      const after = delivered(home);
      assert.equal(after.bodies.length, 40);
      assert.equal(after.pids.size, 3, 'no new worker after the limit went down');
    } finally {
      await d.close();
    }
  },
);

void test('N=1: every job of the uid goes to one worker, as before', { skip }, async () => {
  const home = mailHome('one');
  const d = new LocalDeliverer({ path: '/usr/bin:/bin', workersPerUid: 1, idleMs: 600_000 });
  try {
    const bodies = range(12, 'one');
    const results = await Promise.all(bodies.map((b) => d.deliver(job(home, b))));
    assert.ok(results.every((r) => r.result === 'success'));
    const got = delivered(home);
    assert.deepEqual(got.bodies, [...bodies].sort());
    assert.equal(got.pids.size, 1);
  } finally {
    await d.close();
  }
});

void test(
  'a worker killed mid-job: its jobs defer, the other worker finishes its own, the next job gets a fresh worker',
  {
    skip,
  },
  async () => {
    const sig = ownDir(join(dir, 'sig'));
    const started = join(sig, 'started');
    const go = join(sig, 'go');
    // a program that says which worker runs it ($PPID: the wrapper execs the shell, whose parent is the worker) and
    // waits until the test lets it go, or its directory is gone (the killed worker's programs live on, orphaned, and
    // one that missed `go` before the clean-up removed it polled forever)
    const slowHome = (k: number): string => {
      const home = ownDir(join(dir, `slow${k}`));
      const q = join(home, '.qmail');
      writeFileSync(
        q,
        `|echo "$PPID ${k}" >> ${started}; while [ -d ${sig} ] && [ ! -e ${go} ]; do sleep 0.05; done\n`,
      );
      chownSync(q, UID, GID);
      chmodSync(q, 0o644);
      return home;
    };
    const lines = (): Array<[number, number]> =>
      existsSync(started)
        ? readFileSync(started, 'utf8')
            .trim()
            .split('\n')
            .map((l) => l.split(' ').map(Number) as [number, number])
        : [];
    const home = mailHome('crash');
    const d = new LocalDeliverer({ path: '/usr/bin:/bin', workersPerUid: 2, idleMs: 600_000 });
    try {
      const slow = new Map<number, Promise<LocalResult>>();
      slow.set(1, d.deliver(job(slowHome(1), 'slow-1')));
      slow.set(2, d.deliver(job(slowHome(2), 'slow-2')));
      const quick = range(4, 'quick').map((b) => d.deliver(job(home, b)));
      assert.ok((await Promise.all(quick)).every((r) => r.result === 'success'));
      await waitFor(() => lines().length === 2, 30_000, 'two slow jobs running');
      assert.equal(new Set(lines().map(([pid]) => pid)).size, 2, 'the two slow jobs run in two workers');
      // a third slow job: both workers are at the limit, so one of them has two
      slow.set(3, d.deliver(job(slowHome(3), 'slow-3')));
      await waitFor(() => lines().length === 3, 30_000, 'three slow jobs running');

      const count = new Map<number, number>();
      for (const [pid] of lines()) count.set(pid, (count.get(pid) ?? 0) + 1);
      const victim = [...count].find(([, n]) => n === 2)?.[0];
      assert.ok(victim !== undefined, `one worker runs two slow jobs: ${JSON.stringify(lines())}`);
      const survivor = [...count.keys()].find((p) => p !== victim) ?? 0;
      const victimJobs = lines()
        .filter(([pid]) => pid === victim)
        .map(([, k]) => k);
      process.kill(victim, 'SIGKILL');
      for (const k of victimJobs) {
        const r = await (slow.get(k) as Promise<LocalResult>);
        assert.deepEqual([r.result, r.report], ['deferral', 'qmail-local crashed.\n'], `slow-${k}`);
      }

      // the survivor still has its slow job pending and the pool has room: a fresh worker takes the next job
      const next = await d.deliver(job(home, 'after-crash'));
      assert.equal(next.result, 'success');
      const got = delivered(home);
      assert.deepEqual(got.bodies, ['after-crash', ...range(4, 'quick')].sort());
      const fresh = got.pidOf.get('after-crash');
      assert.ok(fresh !== victim && fresh !== survivor, `a fresh worker (${fresh}), not ${victim} or ${survivor}`);

      writeFileSync(go, '');
      const survivorJob = lines().find(([pid]) => pid === survivor)?.[1] ?? 0;
      const r = await (slow.get(survivorJob) as Promise<LocalResult>);
      assert.deepEqual([r.result, r.report], ['success', 'did 0+0+1\n']);
      // no job was sent again by the pool: three slow starts in all
      assert.equal(lines().length, 3);
    } finally {
      writeFileSync(go, '');
      await d.close();
    }
  },
);

/** Whether process `pid` is gone: no /proc entry, or a zombie waiting for a reaper (it holds nothing any more). */
function gone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

void test(
  'a cut delivery (the pool closed) ends what its program started too: SIGTERM to its process group, SIGKILL after',
  { skip },
  async () => {
    const sig = ownDir(join(dir, 'cut'));
    const [plain, deaf] = [join(sig, 'plain'), join(sig, 'deaf')];
    // two grandchildren of the program's shell (`; true` keeps each sh -c from becoming the shell itself), each
    // writing its pid and sleeping: one ends on SIGTERM, one ignores it (an ignored signal stays ignored across exec)
    const home = ownDir(join(dir, 'cuthome'));
    const q = join(home, '.qmail');
    writeFileSync(
      q,
      `|sh -c 'echo $$ > ${plain}; exec sleep 1000' & sh -c 'trap "" TERM; echo $$ > ${deaf}; exec sleep 1000'; true\n`,
    );
    chownSync(q, UID, GID);
    chmodSync(q, 0o644);
    const pidIn = (f: string): number => (existsSync(f) ? Number(readFileSync(f, 'utf8').trim()) : 0);
    const d = new LocalDeliverer({ path: '/usr/bin:/bin', workersPerUid: 1, idleMs: 600_000 });
    let pids: number[] = [];
    try {
      const running = d.deliver(job(home, 'cut')).catch(() => undefined);
      await waitFor(() => pidIn(plain) > 0 && pidIn(deaf) > 0, 30_000, 'the program started its two grandchildren');
      pids = [pidIn(plain), pidIn(deaf)];
      assert.ok(!pids.some(gone), 'both grandchildren run');
      await d.close(); // the worker's channel closes: killPrograms, then it exits
      await running;
      await waitFor(
        () => pids.every(gone),
        30_000,
        () => `still running after the cut: ${pids.filter((p) => !gone(p)).join(' ')}`,
      );
    } finally {
      for (const p of pids.filter((x) => !gone(x))) process.kill(p, 'SIGKILL');
      await d.close();
    }
  },
);

void test(
  'a worker SIGKILLed mid-program leaves no program behind: its supervisor ends the group, the job defers and its retry delivers',
  { skip },
  async () => {
    const sig = ownDir(join(dir, 'orphan'));
    const [first, deaf, marker] = ['first', 'deaf', 'marker'].map((n) => join(sig, n)) as [string, string, string];
    // First attempt: say its group ($$: the wrapper execs the shell, the group's leader) and its worker ($PPID), start
    // a grandchild that ignores SIGTERM, and write the marker after a while, unless it is ended before. The retry
    // (`first` exists) exits 0 at once and the Maildir line delivers.
    const home = mailHome('orphanhome');
    const q = join(home, '.qmail');
    writeFileSync(
      q,
      `|[ -e ${first} ] && exit 0; echo "$$ $PPID" > ${first}.tmp && mv ${first}.tmp ${first}; ` +
        `sh -c 'trap "" TERM; echo $$ > ${deaf}; exec sleep 1000' & sleep 6; echo late > ${marker}\n./Maildir/\n`,
    );
    chownSync(q, UID, GID);
    chmodSync(q, 0o644);
    const d = new LocalDeliverer({ path: '/usr/bin:/bin', workersPerUid: 1, idleMs: 600_000 });
    let pgid = 0;
    try {
      const running = d.deliver(job(home, 'orphan'));
      await waitFor(() => existsSync(first) && existsSync(deaf), 30_000, 'the program and its grandchild run');
      const [group, worker] = readFileSync(first, 'utf8').trim().split(' ').map(Number) as [number, number];
      pgid = group;
      assert.ok(groupMembers(pgid).length >= 2, 'the program and its grandchild are in its group');
      process.kill(worker, 'SIGKILL');
      assert.deepEqual(await running, { result: 'deferral', report: 'qmail-local crashed.\n' });
      await waitFor(
        () => groupMembers(pgid).length === 0,
        15_000,
        () => `the program's group outlived its worker: ${groupMembers(pgid).join(' ')}`,
      );
      assert.ok(!existsSync(marker), 'the program never acted after its worker died');
      // qmail's retry of a deferral: delivered once, by a fresh worker
      assert.deepEqual(await d.deliver(job(home, 'orphan')), { result: 'success', report: 'did 1+0+1\n' });
      assert.deepEqual(delivered(home).bodies, ['orphan']);
    } finally {
      if (pgid > 0 && groupMembers(pgid).length > 0) process.kill(-pgid, 'SIGKILL');
      await d.close();
    }
  },
);
