// Locks without waiting: flock(2) on an open file, the lock serialmail's setlock -nx takes on RELAYHOST.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

const FLOCK_CANDIDATES = ['/usr/bin/flock', '/bin/flock'];
const BUSY = 75;

/**
 * flock -n on `fd`. Node has no flock, so util-linux `flock -n -x 3` runs on a duplicate of our descriptor: a
 * flock belongs to the open file description, so it stays ours after the helper exits and ends when we close
 * the file (or die: kill -9 frees it). Interoperates with setlock (daemontools) and `flock -n` in scripts.
 */
export async function flockNow(fd: number): Promise<'locked' | 'busy'> {
  const bin = FLOCK_CANDIDATES.find((p) => existsSync(p));
  if (bin === undefined) throw new Error('flock (util-linux) is not installed; install util-linux');
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['-n', '-x', '-E', String(BUSY), '3'], {
      stdio: ['ignore', 'ignore', 'ignore', fd],
      env: {},
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve('locked');
      else if (code === BUSY) resolve('busy');
      else reject(new Error(`flock exited with ${String(code)}`));
    });
  });
}

/** A held lock: close() releases it. */
export interface HeldLock {
  close(): Promise<void>;
}

/**
 * Takes the lock on `path` (which must exist; opened read-only, so a root-owned RELAYHOST of mode 644, as the seeds
 * make it, can be locked by the unprivileged pusher: flock needs no write access) without waiting: the lock, or
 * 'busy' when another process (quail or a setlock script) holds it. Rejects when the file cannot be opened.
 */
export async function lockFile(path: string): Promise<HeldLock | 'busy'> {
  const fh: FileHandle = await open(path, 'r');
  try {
    if ((await flockNow(fh.fd)) === 'busy') {
      await fh.close();
      return 'busy';
    }
  } catch (err) {
    await fh.close();
    throw err;
  }
  return { close: () => fh.close() };
}

/**
 * Whether a push holds the lock on `path` right now: 'free' or 'busy' (taken and given back at once when free).
 * flock(2) does not say who holds it; /proc/locks would name the helper that took it, long gone.
 */
export async function lockStatus(path: string): Promise<'free' | 'busy'> {
  const l = await lockFile(path);
  if (l === 'busy') return 'busy';
  await l.close();
  return 'free';
}
