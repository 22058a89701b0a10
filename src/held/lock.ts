// Locks without waiting: flock(2) on an open file, the lock serialmail's setlock -nx takes on RELAYHOST.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
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
async function lockStatus(path: string): Promise<'free' | 'busy'> {
  const l = await lockFile(path);
  if (l === 'busy') return 'busy';
  await l.close();
  return 'free';
}

/** A process that has a lock file open: its pid and command name (/proc/PID/comm). */
interface LockHolder {
  readonly pid: number;
  readonly command: string;
}

/**
 * Who holds the lock on `path`, when lockStatus says it is busy: flock(2) does not name its holder (and
 * /proc/locks names the process that took it: our flock helper, long gone), but whoever holds it keeps the file
 * open — quail's pusher, or setlock/flock and the script under it. Read from /proc/PID/fd, so it names only the
 * processes this one may look into (all of them as root); empty when none is found.
 */
function lockHolders(path: string): LockHolder[] {
  let target: string;
  try {
    target = realpathSync(path);
  } catch {
    return [];
  }
  const out: LockHolder[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p) && Number(p) !== process.pid);
  } catch {
    return [];
  }
  for (const p of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    const open = fds.some((fd) => {
      try {
        return readlinkSync(`/proc/${p}/fd/${fd}`) === target;
      } catch {
        return false;
      }
    });
    if (!open) continue;
    let command = '?';
    try {
      command = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      // gone meanwhile
    }
    out.push({ pid: Number(p), command });
  }
  return out;
}

/** `free`, or `held by PID (COMMAND), ...` (`held (a push is running)` when the holder cannot be seen). */
export async function lockDescription(path: string): Promise<string> {
  if ((await lockStatus(path)) === 'free') return 'free';
  const who = lockHolders(path);
  return who.length === 0
    ? 'held (a push is running)'
    : `held by ${who.map((h) => `${h.pid} (${h.command})`).join(', ')}`;
}
