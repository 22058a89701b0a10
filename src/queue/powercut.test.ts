// tier: system (needs root, a loop device, mkfs.ext4 and chattr)
// Power cut: the queue on a journaled ext4 image whose backing file is made immutable mid-write, so that nothing
// written after that instant reaches the "disk" (the writes fail, as a drive's would once its power is gone);
// then the image is mounted again (ext4 replays its journal) and recovered as after a reboot. Every id the writers
// acknowledged must be queued with its bytes.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type QueueId, openQueue } from './index.js';
import { bootId } from './journal.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'crash-child.js');

interface Writer {
  readonly child: ChildProcess;
  readonly acked: Map<string, string>;
  readonly firstAck: Promise<void>;
  readonly exited: Promise<void>;
}

/** crash-child.js writing into ROOT's queue; every "ok <id> <sha256>" it prints is an acknowledgement (a 250). */
function startWriter(root: string, journal: boolean): Writer {
  const child = spawn(process.execPath, journal ? [CHILD, root, 'journal'] : [CHILD, root], {
    stdio: ['ignore', 'pipe', 'ignore'], // after the cut its writes fail: its complaints are expected
  });
  const acked = new Map<string, string>();
  let buf = '';
  let first: () => void = () => undefined;
  const firstAck = new Promise<void>((r) => (first = r));
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const m = /^ok (\S+) ([0-9a-f]{64})$/.exec(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (m) {
        acked.set(m[1] as string, m[2] as string);
        first();
      }
    }
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return { child, acked, firstAck, exited };
}

const run = (cmd: string, args: readonly string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });

/**
 * What a reboot changes for recovery: /proc's boot id. The segments the writers left carry this boot's id in their
 * names; giving them another makes recovery read them as written before a restart, as it would after a real power
 * cut (journal.ts, entriesMayBeLost), and restore the messages whose directory entries the disk lost.
 */
function asAfterReboot(queueDir: string): number {
  const now = bootId();
  let n = 0;
  for (const name of readdirSync(join(queueDir, 'journal'))) {
    if (now === '' || !name.includes(`.${now}.`)) continue;
    renameSync(join(queueDir, 'journal', name), join(queueDir, 'journal', name.replace(now, '0'.repeat(32))));
    n++;
  }
  return n;
}

/** e2fsprogs' mkfs.ext4 and chattr: skipped without them on a developer's machine, a failure in CI (QUAIL_REQUIRE_TOOLS=1). */
function missingTool(): string | undefined {
  for (const tool of ['mkfs.ext4', 'chattr']) {
    try {
      run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return tool;
    }
  }
  return undefined;
}

async function cuts(t: TestContext, journal: boolean): Promise<void> {
  // Root and a loop device are the machine's, not a package CI can install: without them the test says why it skipped.
  if (process.getuid?.() !== 0) return void t.skip('needs root, to mount a file system image');
  const missing = missingTool();
  if (missing !== undefined) {
    assert.notEqual(process.env['QUAIL_REQUIRE_TOOLS'], '1', `${missing} is missing: apt-get install e2fsprogs`);
    return void t.skip(`${missing} is missing: apt-get install e2fsprogs`);
  }
  const base = mkdtempSync(join(tmpdir(), 'quail-powercut-'));
  const image = join(base, 'disk.img');
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  closeSync(openSync(image, 'w'));
  run('truncate', ['-s', '256M', image]);
  run('mkfs.ext4', ['-q', '-F', image]);
  try {
    run('mount', ['-o', 'loop', image, mnt]);
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    return void t.skip(`cannot mount an image on a loop device here: ${String(err).split('\n')[0] ?? ''}`);
  }
  let mounted = true;
  try {
    const root = join(mnt, 'q');
    await openQueue(root); // made, and on the disk, before the first cut (quail init's work)
    run('sync', []);
    const allAcked = new Map<string, string>();
    let restored = 0;
    let lost = 0;
    for (let round = 0; round < 3; round++) {
      const writers = Array.from({ length: 2 }, () => startWriter(root, journal));
      await Promise.all(writers.map((w) => w.firstAck));
      await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 400)));
      run('chattr', ['+i', image]); // the power cut: no later write reaches the disk
      await new Promise((r) => setTimeout(r, 100)); // the writers meet the failed writes; an ack now would be a lie
      for (const w of writers) w.child.kill('SIGKILL');
      await Promise.all(writers.map((w) => w.exited));
      for (const w of writers) for (const [id, sum] of w.acked) allAcked.set(id, sum);
      run('umount', [mnt]);
      mounted = false;
      run('chattr', ['-i', image]);
      run('mount', ['-o', 'loop', image, mnt]); // ext4 replays its journal: the disk as the cut left it
      mounted = true;

      const q = await openQueue(root, { create: false });
      if (journal) assert.ok(asAfterReboot(q.dir) > 0, `round ${round}: the writers left journal segments`);
      const rep = await q.recover({ verify: true });
      restored += rep.restored.length;
      assert.equal(rep.inFlight, 0);
      assert.deepEqual(readdirSync(join(q.dir, 'tmp')), [], `round ${round}: tmp/ settled`);
      assert.deepEqual(readdirSync(join(q.dir, 'journal')), [], `round ${round}: the segments settled`);
      const ids = new Set<string>(await q.ids());
      for (const [id, sum] of allAcked) {
        if (!ids.has(id)) {
          lost++;
          continue;
        }
        const file = readFileSync(q.messagePath(id as QueueId));
        const nl = file.indexOf(10);
        assert.equal(
          createHash('sha256')
            .update(file.subarray(nl + 1))
            .digest('hex'),
          sum,
          `round ${round}: content of acknowledged ${id}`,
        );
      }
      assert.equal(lost, 0, `round ${round}: ${lost} of ${allAcked.size} acknowledged messages lost`);
      assert.equal(rep.kept, ids.size, `round ${round}: every message queued passed --verify`);
    }
    assert.ok(allAcked.size > 0);
    t.diagnostic(
      `${allAcked.size} acknowledged over 3 cuts, all queued after recovery; ${restored} restored from the journal`,
    );
  } finally {
    if (mounted) run('umount', [mnt]);
    run('chattr', ['-i', image]); // after a failure between the cut and the remount
    rmSync(base, { recursive: true, force: true });
  }
}

void test('power cut: writes stop mid-inject; after the reboot every acknowledged message is queued whole', (t) =>
  cuts(t, false));

void test('power cut with the group commit: the journal restores what the disk lost of acknowledged messages', (t) =>
  cuts(t, true));
