// Test helpers (not a test): a mail root made with `quail init` plus virtual domains set up by hand, and `quail start` as a child.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePasswd } from '../../src/users/index.js';
import { waitUntil } from './wait.js';
export { waitFor } from './wait.js';

export const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

export interface Owner {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** Runs the compiled `quail` (src/cli/main.js beside this file's build) with ARGS; throws with its output when it does not exit 0. */
export function quail(args: readonly string[], input?: string | Buffer): string {
  const r = spawnSync(process.execPath, [MAIN, ...args], { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`quail ${args.join(' ')}: exit ${String(r.status)}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The account `quail init` chose (control/quailuser), resolved in /etc/passwd. */
export function initOwner(root: string): Owner {
  const name = readFileSync(join(root, 'control', 'quailuser'), 'utf8').trim();
  const e = parsePasswd(readFileSync('/etc/passwd', 'latin1')).find((x) => x.name === name);
  if (!e) throw new Error(`control/quailuser names ${name}, which /etc/passwd does not have`);
  return { name: e.name, uid: e.uid, gid: e.gid };
}

/**
 * `quail init --root ROOT --me ME`, then each domain the seeds' way, by hand: a `D:D` line in
 * control/virtualdomains and rcpthosts, `+D-:owner:uid:gid:ROOT/domains/D:-::` in users/assign, `quail newu`,
 * and per mailbox `domains/D/.qmail-<box>` → `./<box>/Maildir/` (made like `quail maildirmake` does), owned by
 * the account init chose. Returns that account.
 */
export function setupRoot(
  root: string,
  me: string,
  domains: ReadonlyArray<{ domain: string; boxes: readonly string[] }>,
): Owner {
  chmodSync(root, 0o755); // mkdtemp made it 0700: the delivery uid must be able to reach domains/
  quail(['init', '--root', root, '--me', me]);
  const owner = initOwner(root);
  const ctl = (name: string): string => join(root, 'control', name);
  writeFileSync(ctl('virtualdomains'), domains.map((d) => `${d.domain}:${d.domain}\n`).join(''), { flag: 'a' });
  writeFileSync(ctl('rcpthosts'), domains.map((d) => `${d.domain}\n`).join(''), { flag: 'a' });
  const assign = domains.map(
    (d) => `+${d.domain}-:${owner.name}:${owner.uid}:${owner.gid}:${join(root, 'domains', d.domain)}:-::\n`,
  );
  writeFileSync(join(root, 'users', 'assign'), `${assign.join('')}.\n`);
  quail(['newu', '--root', root]);
  for (const d of domains) {
    const home = join(root, 'domains', d.domain);
    mkdirSync(home, { recursive: true, mode: 0o755 });
    for (const box of d.boxes) {
      writeFileSync(join(home, `.qmail-${box}`), `./${box}/Maildir/\n`, { mode: 0o644 });
      // what `quail maildirmake` does, without a process per mailbox
      for (const sub of ['', 'cur', 'new', 'tmp'])
        mkdirSync(join(home, box, 'Maildir', sub), { recursive: true, mode: 0o700 });
    }
    chownTree(home, owner);
  }
  return owner;
}

function chownTree(dir: string, owner: Owner): void {
  // `chown -R` is the operator's step in the seeds; as a non-root user the files are ours already.
  if (process.getuid?.() !== 0) return;
  const r = spawnSync('chown', ['-R', `${owner.uid}:${owner.gid}`, dir]);
  if (r.status !== 0) chownSync(dir, owner.uid, owner.gid);
}

export interface QuailProcess {
  readonly child: ChildProcess;
  /** Everything it printed so far. */
  readonly log: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL to its whole process group (the delivery workers included). */
  killGroup(): void;
}

/**
 * `quail start --root ROOT` on free loopback ports, in its own process group (so its workers can be killed with
 * it); `env` is added to this process's environment (e.g. QUAIL_MX_PORT). `ports` false: the listeners of
 * control/listeners as written (with their options), instead of smtp and submission on ports of its choosing.
 * `openFiles`: run it under that limit on open files (prlimit).
 */
export function spawnQuail(
  root: string,
  env: Readonly<Record<string, string>> = {},
  ports = true,
  openFiles?: number,
): QuailProcess {
  const args = [
    MAIN,
    'start',
    '--root',
    root,
    ...(ports ? ['--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0'] : []),
  ];
  // openFiles: under that RLIMIT_NOFILE, soft and hard (prlimit execs node: the process group is still quail's)
  const child = spawn(
    openFiles === undefined ? process.execPath : 'prlimit',
    openFiles === undefined ? args : [`--nofile=${openFiles}:${openFiles}`, process.execPath, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...env },
    },
  );
  let text = '';
  child.stdout?.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  return {
    child,
    log: () => text,
    exited,
    killGroup: () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

/** spawnQuail, then wait until it logged quail.started (throws if it exits first or takes longer than `waitMs`). */
export async function startProcess(
  root: string,
  waitMs = 30_000,
  env: Readonly<Record<string, string>> = {},
  ports = true,
  openFiles?: number,
): Promise<QuailProcess> {
  const p = spawnQuail(root, env, ports, openFiles);
  let gone = false;
  void p.exited.then(() => (gone = true));
  const deadline = Date.now() + waitMs;
  while (!p.log().includes('quail.started')) {
    if (gone) throw new Error(`quail start exited before it started:\n${p.log()}`);
    if (Date.now() > deadline) {
      p.killGroup();
      throw new Error(`quail start did not start within ${waitMs} ms:\n${p.log()}`);
    }
    await sleep(20);
  }
  return p;
}

/** The port of the running quail's first listener of `kind`, from <root>/run/quail.json. */
export function listenerPort(root: string, kind: 'smtp' | 'submission'): number {
  const st = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as {
    listeners: Array<{ port: number; kind: string }>;
  };
  const port = st.listeners.find((l) => l.kind === kind)?.port;
  if (port === undefined) throw new Error(`no ${kind} listener in ${join(root, 'run', 'quail.json')}`);
  return port;
}

/** swaks to 127.0.0.1:PORT (a real client) with ARGS; its exit status and everything it printed. */
export function swaks(
  port: number,
  args: readonly string[],
  from = 'sender@client.test',
): { status: number | null; out: string } {
  const r = spawnSync('swaks', ['--server', `127.0.0.1:${port}`, '--from', from, '--timeout', '20', ...args], {
    encoding: 'latin1',
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/**
 * `<root>/bin/quail` running this build, as an installed quail would be on the PATH given to `quail start`, for the
 * QMAILQUEUE programs that call `quail filter` or `quail queue-inject`; returns the bin directory.
 */
export function quailOnPath(root: string): string {
  const bin = join(root, 'bin');
  mkdirSync(bin, { recursive: true, mode: 0o755 }); // quail init may have made it (its own bin/ scripts)
  writeFileSync(join(bin, 'quail'), `#!/bin/sh\nexec ${process.execPath} ${MAIN} "$@"\n`, { mode: 0o755 });
  return bin;
}

/** swaks in the background (the test's own servers keep running meanwhile): its status and output once it ends. */
export function swaksAsync(
  port: number,
  args: readonly string[],
  from = 'sender@client.test',
): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn('swaks', ['--server', `127.0.0.1:${port}`, '--from', from, '--timeout', '60', ...args]);
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
    c.stderr.on('data', (b: Buffer) => (out += b.toString('latin1')));
    c.on('close', (status) => resolve({ status, out }));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Messages still in the queue (committed envelopes). */
export function queuedCount(root: string): number {
  const dir = join(root, 'queue', 'env');
  return existsSync(dir) ? readdirSync(dir).length : 0;
}

/** The crash test's n-th message: unique token in Subject and Message-ID, deterministic body, sizes 200 B to 160 KB. */
export function crashMessage(n: number): Buffer {
  const size = n % 97 === 0 ? 160_000 : 200 + ((n * 7919) % 6000);
  let text = `From: crash@test\nTo: ${crashRecipient(n)}\nSubject: crash ${n}\nMessage-ID: <crash.${n}@test>\n\n`;
  for (let i = 0; text.length < size; i++) text += `${n}:${i} ${'abcdefghijklmnopqrstuvwxyz'.repeat(2)}\n`;
  return Buffer.from(text, 'latin1');
}

/** The crash test's mailboxes: u0..u9 in d0.test and d1.test. */
export const crashRecipient = (n: number): string => `u${n % 10}@d${Math.floor(n / 10) % 2}.test`;

/** /proc/net/tcp's hex form of 127.0.0.1:port. */
const loopbackHex = (port: number): string => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;

/** The inode of the socket listening on 127.0.0.1:port, from /proc/net/tcp. */
export function listeningInode(port: number): string | undefined {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === loopbackHex(port) && f[3] === '0A') return f[9];
  }
  return undefined;
}

/** The inode of the server side of the established connection from 127.0.0.1:from to 127.0.0.1:port. */
function connectionInode(port: number, from: number): string | undefined {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === loopbackHex(port) && f[2] === loopbackHex(from) && f[3] === '01') return f[9];
  }
  return undefined;
}

/** The processes holding the server side of the connection from 127.0.0.1:from to 127.0.0.1:port. */
export function holdersOf(port: number, from: number): number[] {
  return socketHolders(connectionInode(port, from));
}

/** Every process holding a descriptor of that socket inode. */
export function socketHolders(inode: string | undefined): number[] {
  if (inode === undefined) return [];
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (
        readdirSync(`/proc/${p}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${p}/fd/${fd}`) === `socket:[${inode}]`;
          } catch {
            return false; // closed meanwhile
          }
        })
      )
        out.push(Number(p));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** The pids of a process group (quail start's: root, its children, and the delivery workers once they run). */
export function processGroup(pgid: number): number[] {
  const r = spawnSync('ps', ['-o', 'pid=', '-g', String(pgid)], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0)
    .sort((a, b) => a - b);
}

/** `pid:inode` of every listening TCP socket (IPv4 or IPv6) that one of `pids` holds. */
export function listeningHeldBy(pids: readonly number[]): string[] {
  const listening = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && f[9] !== undefined) listening.add(f[9]);
    }
  }
  const out: string[] = [];
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone
    }
    for (const fd of fds) {
      try {
        const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
        if (inode !== undefined && listening.has(inode)) out.push(`${pid}:${inode}`);
      } catch {
        // closed meanwhile
      }
    }
  }
  return out.sort();
}

/** Real, effective, saved and filesystem uid of a process. */
export const procUids = (pid: number): number[] =>
  (/^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '').trim().split(/\s+/).map(Number);

/**
 * The processes holding a fresh connection to 127.0.0.1:port once one process alone holds it. `accepter`: the root
 * parent that accepts and hands connections over unread — for a moment it alone holds each one, so a single holder
 * that is the accepter is waited past (if it keeps the connection, it is what this returns after 2 s).
 */
export async function connectionHolders(port: number, accepter?: number): Promise<number[]> {
  const c = netConnect({ host: '127.0.0.1', port });
  try {
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
    });
    const holders = (): number[] => socketHolders(connectionInode(port, c.localPort ?? 0));
    // the parent passes the connection on unread; give the child a moment to take it
    await waitUntil(
      () => {
        const h = holders();
        return h.length === 1 && h[0] !== accepter;
      },
      2000,
      20,
    );
    return holders();
  } finally {
    c.destroy();
  }
}

/**
 * Ports handed out by freePort: below the kernel's ephemeral range (net.ipv4.ip_local_port_range), so that neither a
 * server listening on port 0 nor a client's own end of a connection can be given one of them between freePort's check
 * and its caller's bind. Test files run side by side: a port freePort had found free in the ephemeral range was once
 * bound by another file's quail (listening on 0), and this file's client then talked to that server.
 */
function freeRange(): { low: number; high: number } | undefined {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return first > 21_000 ? { low: 20_000, high: first - 1 } : undefined;
  } catch {
    return undefined;
  }
}
const range = freeRange();
/** Each test process walks the range from its own random place, so two files side by side rarely try the same port. */
let nextFree = range === undefined ? 0 : range.low + Math.floor(Math.random() * (range.high - range.low + 1));

/** Whether `port` (0: any) can be bound on 127.0.0.1 now; the port bound, or undefined. */
function bindable(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => {
      const a = s.address();
      const bound = typeof a === 'object' && a !== null ? a.port : undefined;
      s.close(() => resolve(bound));
    });
  });
}

/**
 * A port free on 127.0.0.1 right now, outside the ephemeral range (above); bound and released, so another test file
 * could still take it, rarely. Where the ephemeral range leaves no room below it, any port the kernel picks.
 */
export async function freePort(): Promise<number> {
  if (range !== undefined) {
    for (let tries = 0; tries < 500; tries++) {
      const port = nextFree;
      nextFree = port >= range.high ? range.low : port + 1;
      if ((await bindable(port)) === port) return port;
    }
  }
  const any = await bindable(0);
  if (any === undefined) throw new Error('no free port on 127.0.0.1');
  return any;
}

/** A connection to 127.0.0.1:port that keeps what the server says and whether it closed (errors are a close). */
export function collecting(port: number): { socket: Socket; got: () => string; closed: () => boolean } {
  const socket = netConnect({ host: '127.0.0.1', port });
  let got = '';
  let closed = false;
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  return { socket, got: () => got, closed: () => closed };
}

/** One SMTP session in lockstep: each line is sent after a reply line arrives; resolves with all the server said. */
export function smtpLockstep(port: number, lines: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port });
    let out = '';
    let i = 0;
    s.on('data', (c: Buffer) => {
      out += c.toString('latin1');
      if (out.endsWith('\r\n') && i < lines.length) s.write(`${lines[i++] ?? ''}\r\n`);
    });
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}
