// Test helper: a journaled ext4 image on a loop device whose power can be cut. `cut()` makes the image's backing file
// immutable, so every later write of the loop device fails, as a drive's would once its power is gone, and the image
// keeps only what reached it before; `remount()` mounts it again (ext4 replays its journal): the disk as the cut left
// it. Needs root, a loop device and e2fsprogs (mkfs.ext4, chattr).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootId, entriesMayBeLost } from '../../src/queue/journal.js';

// stderr kept in the error, not printed: a busy mount is retried and says so only when it gives up
const run = (cmd: string, args: readonly string[]): string =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export interface Image {
  /** The mounted file system (mode 0755, as its parents). */
  readonly mnt: string;
  /** The power cut: no write after this reaches the image. */
  cut(): void;
  /** After a cut, once nothing uses the mount: unmount, give the power back, mount again. */
  remount(): Promise<void>;
  /** Unmount and remove everything (also after a failure between a cut and a remount). */
  close(): Promise<void>;
}

/** Why the machine cannot run a power-cut test, or undefined. A missing tool fails in CI (QUAIL_REQUIRE_TOOLS=1). */
export function powerCutUnavailable(): string | undefined {
  // root and a loop device are the machine's, not a package CI can install: without them the test says why it skips
  if (process.getuid?.() !== 0) return 'needs root, to mount a file system image';
  for (const tool of ['mkfs.ext4', 'chattr']) {
    try {
      run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      assert.notEqual(process.env['QUAIL_REQUIRE_TOOLS'], '1', `${tool} is missing: apt-get install e2fsprogs`);
      return `${tool} is missing: apt-get install e2fsprogs`;
    }
  }
  return undefined;
}

async function umount(mnt: string): Promise<void> {
  // the killed processes' descriptors close as they exit: a busy mount is retried for a while
  for (let i = 0; ; i++) {
    try {
      run('umount', [mnt]);
      return;
    } catch (err) {
      if (i >= 200) throw err; // 20 s
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * A new image of `mb` MiB, mounted with `options` (mount -o, besides loop); a string says why it cannot be (no loop
 * device here, or a temp dir that cannot make a file immutable). `data=writeback` lets ext4 commit a file's metadata
 * before its data, so a file that was not fsynced may come back empty: the harshest of ext4's orders for what a
 * program must sync itself.
 */
export function makeImage(mb = 256, options = ''): Image | string {
  const base = mkdtempSync(join(tmpdir(), 'quail-powercut-'));
  chmodSync(base, 0o755); // delivery uids must reach the mail root inside
  const image = join(base, 'disk.img');
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  closeSync(openSync(image, 'w'));
  try {
    // the cut is this attribute: a temp dir whose file system lacks it cannot hold the image
    run('chattr', ['+i', image]);
    run('chattr', ['-i', image]);
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    return `${tmpdir()} cannot make a file immutable (chattr +i): ${String(err).split('\n')[0] ?? ''}`;
  }
  run('truncate', ['-s', `${mb}M`, image]);
  run('mkfs.ext4', ['-q', '-F', image]);
  try {
    run('mount', ['-o', `loop${options ? `,${options}` : ''}`, image, mnt]);
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    return `cannot mount an image on a loop device here: ${String(err).split('\n')[0] ?? ''}`;
  }
  chmodSync(mnt, 0o755);
  let mounted = true;
  return {
    mnt,
    cut: () => void run('chattr', ['+i', image]),
    remount: async () => {
      await umount(mnt);
      mounted = false;
      run('chattr', ['-i', image]);
      run('mount', ['-o', `loop${options ? `,${options}` : ''}`, image, mnt]);
      mounted = true;
    },
    close: async () => {
      if (mounted) await umount(mnt);
      mounted = false;
      run('chattr', ['-i', image]);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/**
 * What a reboot changes for recovery: the system's boot id. The journal segments the writers left carry this boot's
 * id in their names; giving them another makes recovery read them as written before a restart, as it would after a
 * real power cut. Each renamed segment is checked with recovery's own reading of the name (journal.ts
 * entriesMayBeLost), so a change of the name's format fails here instead of leaving the test without its reboot.
 * Returns how many were renamed.
 */
export function asAfterReboot(queueDir: string): number {
  const now = bootId();
  let n = 0;
  for (const name of readdirSync(join(queueDir, 'journal'))) {
    if (now === '' || !name.includes(`.${now}.`) || entriesMayBeLost(name)) continue;
    const renamed = name.replace(now, '0'.repeat(32));
    assert.ok(entriesMayBeLost(renamed), `recovery reads ${renamed} as written before the last boot`);
    renameSync(join(queueDir, 'journal', name), join(queueDir, 'journal', renamed));
    n++;
  }
  return n;
}
