// tier: system (needs quail start as root, a loop device, e2fsprogs)
// The whole path through a power cut: `quail start` as root with its mail root on a journaled ext4 image mounted
// data=writeback; a first batch of messages is delivered and left for 4 s, then clients send while the send child
// delivers, and the image loses its power (test/support/powercut.ts); every quail process is killed, the image is
// mounted again and quail started on it, as after a reboot. Every message that got its 250 must reach its Maildir whole
// (a duplicate is allowed, as after any crash; a loss is not). The first batch is what shows the Maildir's own fsyncs:
// the queue's journal can no longer restore it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { asAfterReboot, makeImage, powerCutUnavailable } from '../../test/support/powercut.js';
import { listenerPort, setupRoot, startProcess, type QuailProcess } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

/**
 * One client sending messages `first`, `first + step`, ... one at a time on one connection until told to stop or the
 * connection ends; `acked` gets each number whose final reply was 250.
 */
function client(port: number, first: number, step: number, acked: Set<number>, stop: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = '';
    let n = first;
    // the commands of the message under way, each sent when the reply before it arrives
    let queue: string[] = ['HELO cut.test'];
    let atData = false;
    const next = (): void => {
      if (queue.length === 0) {
        if (stop()) {
          s.end('QUIT\r\n');
          return;
        }
        queue = [
          'MAIL FROM:<a@cut.test>',
          'RCPT TO:<box@cut.test>',
          'DATA',
          `Subject: n${n}\r\n\r\n${'x'.repeat(200)}\r\nend-${n}\r\n.`,
        ];
      }
      const line = queue.shift() ?? '';
      atData = line.startsWith('Subject: ');
      s.write(`${line}\r\n`);
    };
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const reply = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (reply[3] === '-') continue;
        if (atData) {
          if (reply.startsWith('250')) acked.add(n);
          n += step;
          queue = [];
          if (!reply.startsWith('250')) {
            s.end('QUIT\r\n');
            return;
          }
        }
        next();
      }
    });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}

/** The message numbers whose files in `newDir` end with their own last line. */
function delivered(newDir: string): Set<number> {
  const got = new Set<number>();
  if (!existsSync(newDir)) return got;
  for (const f of readdirSync(newDir)) {
    const text = readFileSync(join(newDir, f), 'latin1');
    const m = /^Subject: n(\d+)$/m.exec(text);
    if (m && text.endsWith(`\nend-${m[1] ?? ''}\n`)) got.add(Number(m[1]));
  }
  return got;
}

void test('power cut under load: after the reboot every message that got its 250 is in its Maildir, whole', async (t) => {
  const why = powerCutUnavailable();
  if (why !== undefined) return void t.skip(why);
  const disk = makeImage(512, 'data=writeback');
  if (typeof disk === 'string') return void t.skip(disk);
  let q: QuailProcess | undefined;
  try {
    const root = join(disk.mnt, 'root');
    mkdirSync(root);
    setupRoot(root, 'mx.cut.test', [{ domain: 'cut.test', boxes: ['box'] }]);
    const newDir = join(root, 'domains', 'cut.test', 'box', 'Maildir', 'new');
    // deliveries slower than acceptance, so that at the cut some messages are queued and others being delivered
    writeFileSync(join(root, 'domains', 'cut.test', '.qmail-box'), '|sleep 0.03\n./box/Maildir/\n');
    // the set-up on the disk, as it would be long before a real power cut (quail init does not fsync its files)
    execFileSync('sync');
    q = await startProcess(root);
    const port = listenerPort(root, 'smtp');
    const acked = new Set<number>();
    const proc1 = q;
    // First, messages delivered well before the cut: after 4 s the queue's journal has retired the segments that held
    // them (docs/QUEUE.md), so after the cut only their Maildir files can bring them back, and only if they were synced.
    const early = Promise.all([0, 1, 2, 3, 4].map((c) => client(port, c, 5, acked, () => acked.size >= 60)));
    await early;
    const firstBatch = [...acked];
    await waitFor(
      () => firstBatch.every((n) => delivered(newDir).has(n)),
      60_000,
      () => `the first ${firstBatch.length} delivered\n${proc1.log()}`,
    );
    await new Promise((r) => setTimeout(r, 4000));
    // then the cut, while messages arrive and others are being delivered
    let stopping = false;
    const clients = Promise.all([0, 1, 2, 3, 4].map((c) => client(port, 1000 + c, 5, acked, () => stopping)));
    await waitFor(
      () => acked.size >= firstBatch.length + 100 && delivered(newDir).size >= firstBatch.length + 30,
      60_000,
      () => `100 more accepted, 30 more delivered (${acked.size}, ${delivered(newDir).size})\n${proc1.log()}`,
    );
    disk.cut();
    await new Promise((r) => setTimeout(r, 200)); // quail meets the failed writes; a 250 now would be a lie
    proc1.killGroup();
    await proc1.exited;
    stopping = true;
    await clients;
    const before = delivered(newDir).size;
    await disk.remount();
    const segments = asAfterReboot(join(root, 'queue'));

    q = await startProcess(root);
    const proc = q;
    await waitFor(
      () => [...acked].every((n) => delivered(newDir).has(n)),
      60_000,
      () => {
        const got = delivered(newDir);
        const missing = [...acked].filter((n) => !got.has(n));
        return `every acknowledged message delivered: ${missing.length} of ${acked.size} missing (${missing.slice(0, 10).join(' ')})\n${proc.log()}`;
      },
    );
    assert.doesNotMatch(proc.log(), /Unhandled|TypeError|RangeError/);
    t.diagnostic(
      `${acked.size} acknowledged; ${before} in the Maildir at the cut as the processes saw it; ${segments} journal segments left; all delivered after the restart`,
    );
  } finally {
    q?.killGroup();
    await q?.exited;
    await disk.close();
  }
});
