// A full disk under quail start (docs/QUEUE.md, "Full disk"): the queue on a small tmpfs that is filled takes no
// message (451, nothing left behind) and takes them again once space is back; a full Maildir defers (the log names
// ENOSPC), never bounces, leaves nothing in tmp/ or new/, and the message is delivered once space is back.
// tier: system (needs root and tmpfs mounts)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, initOwner, quail, startProcess, swaks, type QuailProcess } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

const asRoot = process.getuid?.() === 0;

/** A tmpfs of `size` on `dir`, owned by uid:gid (mode 0700); a text saying why not, or undefined when mounted. */
function mountSmall(dir: string, size: string, uid: number, gid: number): string | undefined {
  const opts = `size=${size},mode=0700,uid=${uid},gid=${gid}`;
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `cannot mount a tmpfs (${(r.stderr || r.error?.message || '?').trim()})`;
}

/** Writes `file` until the file system has no page left (ENOSPC). */
function fill(file: string): void {
  const fd = openSync(file, 'w', 0o600);
  const block = Buffer.alloc(4096, 0x78);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'ENOSPC')) throw err;
  } finally {
    closeSync(fd);
  }
}

const message = (subject: string, bytes: number): string =>
  `Subject: ${subject}\r\n\r\n${`${'x'.repeat(70)}\r\n`.repeat(Math.ceil(bytes / 72))}`;

void test(
  'full disk: a full queue answers 451 and keeps nothing, a full Maildir defers; both carry on once space is back',
  { skip: !asRoot && 'needs root (tmpfs mounts)' },
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'quail-diskfull-'));
    chmodSync(root, 0o755);
    const mounts: string[] = [];
    let proc: QuailProcess | undefined;
    try {
      quail(['init', '--root', root, '--me', 'mx.df.test']);
      quail(['domain', 'add', 'df.test', '--root', root]);
      quail(['user', 'add', 'joe@df.test', '--password', 'secret', '--root', root]);
      const owner = initOwner(root);
      const queue = join(root, 'queue');
      const maildir = join(root, 'domains', 'df.test', 'joe', 'Maildir');
      for (const [dir, size] of [
        [queue, '1m'],
        [maildir, '256k'],
      ] as const) {
        const skip = mountSmall(dir, size, owner.uid, owner.gid);
        if (skip) {
          t.skip(skip);
          return;
        }
        mounts.push(dir);
      }
      for (const sub of ['cur', 'new', 'tmp']) {
        mkdirSync(join(maildir, sub), { mode: 0o700 });
        chownSync(join(maildir, sub), owner.uid, owner.gid);
      }
      // listeners of its own (without control/listeners quail start would also take POP3's default ports)
      const port = await freePort();
      writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:${port} smtp\n`);
      proc = await startProcess(root, 30_000, {}, false);
      const log = proc.log;
      const send = (subject: string, bytes: number): string => {
        const file = join(root, 'message.eml'); // a file: 600 KiB is too long for an argument
        writeFileSync(file, message(subject, bytes));
        return swaks(port, ['--to', 'joe@df.test', '--data', `@${file}`]).out;
      };
      const queued = (): string[] => readdirSync(join(queue, 'env'));

      // the queue's file system full: 451 for a small message and for one larger than the space left
      const qfill = join(queue, 'filler');
      fill(qfill);
      assert.match(send('small', 1024), /\n<\*\* 451 4\.3\.0 [^\n]*file system is full \(ENOSPC\)/);
      unlinkSync(qfill);
      // room for about 300 KiB: a 600 KiB message fails half-written
      const big = join(queue, 'big');
      const fd = openSync(big, 'w', 0o600);
      writeSync(fd, Buffer.alloc(700 * 1024));
      closeSync(fd);
      assert.match(send('large', 600 * 1024), /\n<\*\* 451 4\.3\.0 [^\n]*\(ENOSPC\)/);
      for (const d of ['tmp', 'mess', 'env'])
        assert.deepEqual(readdirSync(join(queue, d)), [], `nothing of the refused messages in queue/${d}`);
      await waitFor(() => /smtp\.queue-failed [^\n]*file system is full \(ENOSPC\)/.test(log()), 30_000, log);
      unlinkSync(big);

      // space back: accepted and delivered, no operator step
      assert.match(send('after queue full', 1024), /\n<- {2}250 /);
      await waitFor(() => readdirSync(join(maildir, 'new')).length === 1, 30_000, log);

      // the Maildir's file system full: deferred (never bounced), nothing half-written in tmp/ or new/
      const mfill = join(maildir, 'filler');
      fill(mfill);
      assert.match(send('to a full maildir', 20 * 1024), /\n<- {2}250 /);
      await waitFor(() => /result=deferral [^\n]*ENOSPC/.test(log()), 30_000, log);
      assert.doesNotMatch(log(), /result=failure|send\.bounce/);
      assert.deepEqual(readdirSync(join(maildir, 'tmp')), []);
      assert.equal(readdirSync(join(maildir, 'new')).length, 1, 'only the first message in new/');
      assert.equal(queued().length, 1, 'still queued');

      // space back: the next retry (asked for at once) delivers it whole
      unlinkSync(mfill);
      quail(['queue', 'flush', '--root', root]);
      await waitFor(() => readdirSync(join(maildir, 'new')).length === 2, 30_000, log);
      await waitFor(() => queued().length === 0, 30_000, log);
      const got = readdirSync(join(maildir, 'new')).map((n) => readFileSync(join(maildir, 'new', n), 'latin1'));
      assert.ok(
        got.some((m) => m.includes('Subject: to a full maildir') && m.length > 20 * 1024),
        'delivered whole',
      );
    } finally {
      if (proc) {
        proc.child.kill('SIGTERM');
        await proc.exited;
      }
      for (const dir of mounts.reverse()) spawnSync('umount', [dir]);
      rmSync(root, { recursive: true, force: true });
    }
  },
);

void test(
  'full disk: quail start on a full run/ serves mail without its pid file and writes it once space is back',
  { skip: !asRoot && 'needs root (tmpfs mounts)' },
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'quail-diskfull-run-'));
    chmodSync(root, 0o755);
    const run = join(root, 'run');
    let mounted = false;
    let proc: QuailProcess | undefined;
    try {
      quail(['init', '--root', root, '--me', 'mx.df.test']);
      quail(['domain', 'add', 'df.test', '--root', root]);
      quail(['user', 'add', 'joe@df.test', '--password', 'secret', '--root', root]);
      mkdirSync(run, { recursive: true });
      const skip = mountSmall(run, '64k', 0, 0);
      if (skip) {
        t.skip(skip);
        return;
      }
      mounted = true;
      chmodSync(run, 0o755);
      const filler = join(run, 'filler');
      fill(filler);
      const port = await freePort();
      writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:${port} smtp\n`);
      proc = await startProcess(root, 30_000, {}, false);
      const log = proc.log;
      await waitFor(() => /quail\.warning [^\n]*quail\.pid[^\n]*ENOSPC/.test(log()), 30_000, log);
      const pid = join(run, 'quail.pid');
      assert.equal(existsSync(pid), false, 'no empty pid file left');
      const file = join(root, 'message.eml');
      writeFileSync(file, message('while run/ is full', 1024));
      assert.match(swaks(port, ['--to', 'joe@df.test', '--data', `@${file}`]).out, /\n<- {2}250 /);
      const maildir = join(root, 'domains', 'df.test', 'joe', 'Maildir', 'new');
      await waitFor(() => readdirSync(maildir).length === 1, 30_000, log);

      unlinkSync(filler); // space back: the next try (every 10 s) writes it, without an operator
      await waitFor(() => existsSync(pid), 90_000, log);
      assert.equal(readFileSync(pid, 'utf8'), `${proc.child.pid ?? 0}\n`);
    } finally {
      if (proc) {
        proc.child.kill('SIGTERM');
        await proc.exited;
      }
      if (mounted) spawnSync('umount', [run]);
      rmSync(root, { recursive: true, force: true });
    }
  },
);
