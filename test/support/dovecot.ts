// Runs Dovecot (and quail start) as child processes on loopback ports, for the IMAP test and the bench.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkpasswordScript, dovecotConfig, type DovecotOptions } from '../../src/dovecot/config.js';
import { waitPort } from './wait.js';

/** Where Debian's dovecot-core puts the master binary, or null with what to install. */
export function dovecotBinary(): { path: string } | { missing: string } {
  const r = spawnSync('sh', ['-c', 'command -v dovecot || ls /usr/sbin/dovecot'], { encoding: 'utf8' });
  const path = r.stdout.trim().split('\n')[0] ?? '';
  if (r.status === 0 && path !== '') return { path };
  return {
    missing:
      "dovecot is not installed: apt-get install -y dovecot-imapd dovecot-pop3d (CI's .ci/run must install them)",
  };
}

/** Has Debian's dovecot-pop3d (the POP3 service binary)? */
export const hasDovecotPop3 = (): boolean => spawnSync('test', ['-x', '/usr/lib/dovecot/pop3']).status === 0;

export { freePort } from './start.js';

export interface RunningDovecot {
  readonly conf: string;
  readonly logPath: string;
  /** The master's pid (its pop3 and auth processes are below it: the bench reads their CPU from /proc). */
  readonly pid: number | undefined;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Writes dir/dovecot.conf (and, with `quail`, dir/checkpassword: the wrapper around `quail checkpassword`) and
 * starts `dovecot -F -c` in the foreground; resolves once its first port answers.
 */
export async function startDovecot(
  dir: string,
  o: Omit<DovecotOptions, 'baseDir' | 'checkpassword'> & {
    quail?: { node: string; main: string };
    /** Lines added at the end of the configuration (the bench's settings). */
    extra?: readonly string[];
  },
): Promise<RunningDovecot> {
  const bin = dovecotBinary();
  if ('missing' in bin) throw new Error(bin.missing);
  const baseDir = join(dir, 'run');
  mkdirSync(baseDir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  let checkpassword: string | undefined;
  if (o.quail) {
    checkpassword = join(dir, 'checkpassword');
    writeFileSync(checkpassword, checkpasswordScript({ ...o.quail, root: o.root }), { mode: 0o755 });
  }
  const logPath = join(dir, 'dovecot.log');
  const conf = join(dir, 'dovecot.conf');
  const text = dovecotConfig({ ...o, baseDir, logPath, ...(checkpassword ? { checkpassword } : {}) });
  writeFileSync(conf, o.extra ? `${text}${o.extra.join('\n')}\n` : text);
  let out = '';
  const child: ChildProcess = spawn(bin.path, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const log = (): string => {
    let text = out;
    try {
      text += readFileSync(logPath, 'utf8');
    } catch {
      // not written yet
    }
    return text;
  };
  const port = o.imapPort ?? o.pop3Port ?? 0;
  try {
    await Promise.race([
      waitPort(port, 20_000, () => `dovecot did not listen on ${port}: ${log()}`),
      exited.then(() => {
        throw new Error(`dovecot exited: ${log()}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    conf,
    logPath,
    pid: child.pid,
    log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(t);
    },
  };
}
