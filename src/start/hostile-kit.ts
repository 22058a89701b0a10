// Test helpers (not a test) for issue 12's hostile-input battery: a real `quail start`, a raw client, health checks.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type SecureVersion, type TLSSocket } from 'node:tls';
import { hashPassword, openDirectory } from '../directory/index.js';
import { MAIN, sleep } from './testkit.js';

export const DOMAIN = 'hostile.test';
/** The mailbox hostile cases send to, and the one the health checks send to (counted separately). */
export const BOX = `box@${DOMAIN}`;
export const HEALTH = `health@${DOMAIN}`;
export const PASSWORD = 'box-secret';

/** Text that must never reach a client: a stack frame, an exception name, a file path of the program. */
const LEAK = [
  /^\s+at\s/m,
  /\bat \S+ \(/,
  /:\d+:\d+\)?$/m,
  /\b[A-Z][a-zA-Z]*Error\b/,
  /\bError:/,
  /\bERR_[A-Z_]{3,}/,
  /node:internal/,
  /\/(?:work|tmp|dist|src|node_modules|usr|root|home|var)\/\S/,
  /\.(?:js|ts|mjs|cjs):\d+/,
];

/** Asserts that server output carries no stack trace, exception name or path (issue 12). */
export function assertNoLeak(text: string, what: string): void {
  for (const re of LEAK) assert.doesNotMatch(text, re, `${what}: the server leaked internals (${String(re)}):\n${text.slice(0, 2000)}`);
}

/** Every line of an SMTP reply stream is `DDD ` or `DDD-` followed by printable text. */
export function assertSmtpLines(text: string, what: string): void {
  for (const line of text.split('\r\n').slice(0, -1)) {
    assert.match(line, /^[2-5]\d\d[ -][\x20-\x7e]*$/, `${what}: malformed reply line ${JSON.stringify(line)} in\n${text.slice(0, 2000)}`);
  }
  assertNoLeak(text, what);
}

type Waiter = () => void;

/** A raw client: bytes in, bytes out, replies and lines read with deadlines, STARTTLS, FIN and RST. */
export class Wire {
  private buf: Buffer = Buffer.alloc(0);
  /** Everything received so far (latin1), for leak checks. */
  received = '';
  closed = false;
  private waiters: Waiter[] = [];
  private raw: Socket;

  private constructor(private sock: Socket) {
    this.raw = sock;
    this.attach(sock);
  }

  /** Connects to 127.0.0.1:port (from `localAddress`, a 127.x address, when given); `tls` = implicit TLS. */
  static connect(port: number, opts: { tls?: boolean; localAddress?: string } = {}): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const raw = netConnect({ host: '127.0.0.1', port, ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) });
      raw.once('error', reject);
      raw.once('connect', () => {
        raw.off('error', reject);
        if (!opts.tls) return resolve(new Wire(raw));
        const w = new Wire(raw);
        w.upgrade().then(() => resolve(w), reject);
      });
    });
  }

  private attach(s: Socket): void {
    s.on('data', this.onData);
    s.on('error', this.onClose);
    s.on('close', this.onClose);
    s.on('end', this.onClose);
  }

  private readonly onData = (c: Buffer): void => {
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    this.received += c.toString('latin1');
    if (this.received.length > 1_000_000) this.received = this.received.slice(-500_000);
    this.wake();
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.wake();
  };

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async until<T>(take: () => T | undefined, ms: number): Promise<T | string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const got = take();
      if (got !== undefined) return got;
      if (this.closed) return 'closed';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** TLS on the connection as it is now (after `220 ready` or `+OK begin TLS`); rejects if the handshake fails. */
  upgrade(opts: { minVersion?: SecureVersion; maxVersion?: SecureVersion } = {}): Promise<void> {
    const raw = this.sock;
    raw.off('data', this.onData);
    raw.off('error', this.onClose);
    raw.off('close', this.onClose);
    raw.off('end', this.onClose);
    return new Promise((resolve, reject) => {
      const tls: TLSSocket = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'mail.hostile.test', ...opts });
      const failed = (err: Error): void => {
        // the handshake failed: go on watching the TCP connection (the test then expects the server to close it)
        this.attach(raw);
        tls.destroy();
        reject(err);
      };
      tls.once('secureConnect', () => {
        tls.off('error', failed);
        this.sock = tls;
        this.attach(tls);
        resolve();
      });
      tls.once('error', failed);
    });
  }

  /** This end's port (to tell the server-side socket of this connection in /proc/net/tcp). */
  get localPort(): number {
    return this.raw.localPort ?? 0;
  }

  /** FIN on the TCP connection without a TLS close_notify. */
  rawEnd(): void {
    if (!this.raw.destroyed) this.raw.end();
  }

  /** Bytes straight onto the TCP connection, under TLS too (a forged record). */
  rawWrite(data: Buffer): void {
    if (!this.raw.destroyed) this.raw.write(data);
  }

  /** Writes and waits until the bytes are handed to the kernel (false if the server closed first). */
  write(data: string | Buffer): Promise<boolean> {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (this.closed || this.sock.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (): void => {
        this.sock.off('close', done);
        resolve(!this.sock.destroyed);
      };
      this.sock.once('close', done);
      this.sock.write(b, (err) => {
        this.sock.off('close', done);
        resolve(err === undefined || err === null);
      });
    });
  }

  /** Writes without waiting (pipelining a burst). */
  send(data: string | Buffer): void {
    if (!this.sock.destroyed) this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** FIN: no more bytes from us; the server's replies still arrive. */
  end(): void {
    if (!this.sock.destroyed) this.sock.end();
  }

  /** RST of the TCP connection (under TLS too). */
  reset(): void {
    if (!this.raw.destroyed) this.raw.resetAndDestroy();
    this.sock.destroy();
  }

  destroy(): void {
    this.sock.destroy();
    this.raw.destroy();
  }

  /** One SMTP reply (all its lines, CRLF included), or how reading it ended: 'closed' or 'timeout'. */
  reply(ms = 15_000): Promise<string> {
    return this.until(() => {
      let at = 0;
      for (;;) {
        const nl = this.buf.indexOf('\n', at);
        if (nl < 0) return undefined;
        const line = this.buf.subarray(at, nl).toString('latin1');
        at = nl + 1;
        if (!/^\d{3}-/.test(line)) {
          const text = this.buf.subarray(0, at).toString('latin1');
          this.buf = this.buf.subarray(at);
          return text;
        }
      }
    }, ms);
  }

  /** The reply's code, or 0 when the connection closed or nothing came in time. */
  async code(ms = 15_000): Promise<number> {
    const r = await this.reply(ms);
    return r === 'closed' || r === 'timeout' ? 0 : Number(r.slice(0, 3));
  }

  /** One line (POP3), CRLF included, or 'closed' or 'timeout'. */
  line(ms = 15_000): Promise<string> {
    return this.until(() => {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) return undefined;
      const text = this.buf.subarray(0, nl + 1).toString('latin1');
      this.buf = this.buf.subarray(nl + 1);
      return text;
    }, ms);
  }

  /** A POP3 multi-line body up to and including the terminating `.` line. */
  multiline(ms = 15_000): Promise<string> {
    return this.until(() => {
      const end = this.buf.indexOf('\r\n.\r\n');
      const start = this.buf.subarray(0, 3).toString('latin1') === '.\r\n' ? 0 : end < 0 ? -1 : end + 2;
      if (start < 0) return undefined;
      const text = this.buf.subarray(0, start + 3).toString('latin1');
      this.buf = this.buf.subarray(start + 3);
      return text;
    }, ms);
  }

  /** Drops what has been received and not read. */
  skip(): void {
    this.buf = Buffer.alloc(0);
  }

  /** True when the server closed the connection within `ms` (whatever it sent meanwhile is kept). */
  async closes(ms = 10_000): Promise<boolean> {
    return (await this.until(() => undefined, ms)) === 'closed';
  }
}

/** The first flight of a real TLS client (its ClientHello), for half handshakes. */
export async function clientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = createServer((s) => {
      s.once('data', (c: Buffer) => {
        resolve(c);
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = tlsConnect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, rejectUnauthorized: false, servername: 'mail.hostile.test' });
      c.on('error', () => undefined);
      c.on('close', () => c.destroy());
    });
    srv.on('error', reject);
  });
}

/** Distinct loopback source addresses (127.1.x.y), so that per-address limits and login throttles stay per case. */
let nextAddr = 0;
export function freshLoopback(): string {
  nextAddr++;
  return `127.${1 + Math.floor(nextAddr / 65_000)}.${Math.floor((nextAddr % 65_000) / 250)}.${(nextAddr % 250) + 1}`;
}

/** Runs `jobs` with at most `n` at once; the first failure is thrown after all have settled. */
export async function parallel<T>(items: readonly T[], n: number, job: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        await job(items[i] as T, i);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

function cli(root: string, args: readonly string[]): void {
  const r = spawnSync(process.execPath, [MAIN, ...args, '--root', root], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`quail ${args.join(' ')}: exit ${String(r.status)}\n${r.stdout}${r.stderr}`);
}

export interface Ports {
  readonly smtp: number;
  readonly submission: number;
  readonly pop3: number;
  readonly pop3s: number;
}

/**
 * One `quail start` for a whole test file: a mail root with the directory (domain hostile.test, mailboxes box,
 * health and `extra`), SMTP, submission, POP3 (STLS) and POP3S on loopback ports. As root the SMTP and POP3
 * children run as control/quailuser; their pids must never change (issue 12).
 */
export class Hostile {
  readonly ports: Ports;
  readonly pids: { readonly parent: number; readonly smtpd: number; readonly pop3d: number };

  private constructor(readonly dir: string, readonly root: string, private readonly child: ChildProcess, ports: Ports, pids: Hostile['pids'], text: () => string) {
    this.ports = ports;
    this.pids = pids;
    this.log = text;
  }

  /** Everything quail printed so far. */
  readonly log: () => string;

  static async start(name: string, extra: readonly string[] = []): Promise<Hostile> {
    const dir = mkdtempSync(join(tmpdir(), `quail-${name}-`));
    chmodSync(dir, 0o755); // the unprivileged children must reach the mail root
    const root = join(dir, 'root');
    cli(root, ['init', '--me', 'mail.hostile.test']);
    cli(root, ['domain', 'add', DOMAIN]);
    // The battery logs in hundreds of times: its mailboxes' passwords are hashed with scrypt at ln=4 instead of 15
    // (the parameters travel in the hash), so that the CPU goes to the protocol, not to 0.1 s per password check.
    const boxes = ['box', 'health', ...extra];
    for (const box of boxes) cli(root, ['user', 'add', `${box}@${DOMAIN}`, '--no-password']);
    const directory = await openDirectory({ root });
    try {
      for (const box of boxes) await directory.updateMailbox(DOMAIN, box, { passwordHash: await hashPassword(PASSWORD, { ln: 4, r: 8, p: 1 }) });
    } finally {
      await directory.close();
    }
    const child = spawn(process.execPath, [MAIN, 'start', '--root', root, '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0',
      '--pop3', '127.0.0.1:0', '--pop3s', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let text = '';
    child.stdout?.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (text += c.toString()));
    const state = join(root, 'run', 'quail.json');
    const deadline = Date.now() + 60_000;
    while (!(text.includes('quail.started') && existsSync(state))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`quail start did not start:\n${text}`);
      }
      await sleep(25);
    }
    const st = JSON.parse(readFileSync(state, 'utf8')) as { listeners: Array<{ port: number; kind: string }>; smtpd?: { pid: number } };
    const port = (kind: string): number => st.listeners.find((l) => l.kind === kind)?.port ?? 0;
    const logged = (re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
    const ports: Ports = {
      smtp: port('smtp'),
      submission: port('submission'),
      pop3: logged(/pop3\.listening address=\S+ port=(\d+) tls=stls/),
      pop3s: logged(/pop3\.listening address=\S+ port=(\d+) tls=implicit/),
    };
    const parent = child.pid ?? 0;
    const asRoot = process.getuid?.() === 0;
    const pids = { parent, smtpd: asRoot ? st.smtpd?.pid ?? 0 : parent, pop3d: asRoot ? logged(/pop3d\.started pid=(\d+)/) : parent };
    const h = new Hostile(dir, root, child, ports, pids, () => text);
    for (const [k, v] of Object.entries({ ...ports, ...pids })) assert.ok(v > 0, `${k} not found in quail's state or log:\n${text}`);
    h.idleFds = h.socketFds();
    return h;
  }

  /** Files in a mailbox's Maildir (new and cur). */
  maildir(box: string): string[] {
    const base = join(this.root, 'domains', DOMAIN, box, 'Maildir');
    return ['new', 'cur'].flatMap((d) => (existsSync(join(base, d)) ? readdirSync(join(base, d)).map((f) => join(base, d, f)) : []));
  }

  /** The same processes still serve: no child died, none was replaced. */
  assertSamePids(what: string): void {
    const log = this.log();
    assert.equal(this.child.exitCode, null, `${what}: quail start exited:\n${log.slice(-4000)}`);
    assert.doesNotMatch(log, /smtpd\.died|pop3d\.died|smtpd\.started[^\n]*\n(?:.*\n)*.*smtpd\.started|uncaught|Unhandled/i, `${what}: a serving process died:\n${log.slice(-4000)}`);
    for (const [k, pid] of Object.entries(this.pids)) assert.ok(existsSync(`/proc/${pid}`), `${what}: the ${k} process ${pid} is gone:\n${log.slice(-4000)}`);
    // an exception inside a session is logged smtp.error / pop3.error: hostile input must never cause one
    const errors = log.split('\n').filter((l) => / (?:smtp|pop3|smtpd|pop3d)\.error /.test(l));
    assert.deepEqual(errors, [], `${what}: a session failed with an exception`);
    const st = JSON.parse(readFileSync(join(this.root, 'run', 'quail.json'), 'utf8')) as { smtpd?: { pid: number } };
    if (process.getuid?.() === 0) assert.equal(st.smtpd?.pid, this.pids.smtpd, `${what}: the SMTP process was replaced`);
  }

  /**
   * After every case (issue 12): the same pids, a fresh SMTP session gets its banner and a normal message to
   * health@ is accepted (250), a fresh POP3 session gets its greeting. Delivery is checked one step behind (the
   * previous check's message must be in the Maildir by now, else this waits for it), so that a case does not
   * wait for the scheduler; `stop()` waits for the last one.
   */
  async health(what: string): Promise<void> {
    this.assertSamePids(what);
    await this.noLingering(what);
    const n = this.healthLabels.push(what);
    const w = await Wire.connect(this.ports.smtp);
    try {
      const banner = await w.reply(10_000);
      assert.match(String(banner), /^220 /, `${what}: no SMTP banner for a fresh session (${String(banner)})`);
      w.send(`EHLO health.test\r\nMAIL FROM:<health-${n}@client.test>\r\nRCPT TO:<${HEALTH}>\r\nDATA\r\n`);
      const codes = [await w.code(), await w.code(), await w.code(), await w.code()];
      assert.deepEqual(codes, [250, 250, 250, 354], `${what}: a normal message was not accepted: ${w.received}`);
      w.send(`Subject: health ${n}\r\nX-Health: ${n}\r\n\r\nstill alive after ${what}\r\n.\r\nQUIT\r\n`);
      const done = await w.reply();
      assert.match(String(done), /^250 /, `${what}: a normal message was not queued: ${w.received}`);
      assert.equal(await w.code(), 221);
    } finally {
      w.destroy();
    }
    const logged = Date.now() + 10_000;
    while (this.queuedFrom(`health-${n}@client.test`) === 0) {
      assert.ok(Date.now() < logged, `${what}: smtp.queued of health message ${n} not logged within 10 s`);
      await sleep(10);
    }
    this.checkExpectations();
    const p = await Wire.connect(this.ports.pop3);
    try {
      assert.match(String(await p.line(10_000)), /^\+OK /, `${what}: no POP3 greeting for a fresh session`);
      p.send('QUIT\r\n');
      assert.match(String(await p.line()), /^\+OK/);
    } finally {
      p.destroy();
    }
    await this.delivered(n - 1);
    this.assertSamePids(what);
  }

  private readonly healthLabels: string[] = [];

  /**
   * Server-side connections on quail's ports that are established or half-closed by the client (CLOSE_WAIT), from
   * /proc/net/tcp: a session the server failed to end. The cases' own connections are all closed by then.
   */
  lingering(): string[] {
    const ports = new Set(Object.values(this.ports));
    const out: string[] = [];
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      if (!existsSync(file)) continue;
      for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        const local = Number.parseInt(f[1]?.split(':')[1] ?? '', 16);
        const remote = Number.parseInt(f[2]?.split(':')[1] ?? '', 16);
        if (ports.has(local) && !this.kept.has(remote) && (f[3] === '01' || f[3] === '08')) out.push(`port ${local} ${f[3] === '01' ? 'ESTABLISHED' : 'CLOSE_WAIT'} from ${f[2] ?? ''}`);
      }
    }
    return out;
  }

  /** Socket descriptors the SMTP and POP3 processes hold (listeners, IPC, sessions). */
  socketFds(): { smtpd: number; pop3d: number } {
    const count = (pid: number): number => {
      let n = 0;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
        } catch {
          // closed meanwhile
        }
      }
      return n;
    };
    return { smtpd: count(this.pids.smtpd), pop3d: count(this.pids.pop3d) };
  }

  /** The descriptors at rest, right after the start (set by start()). */
  private idleFds = { smtpd: 0, pop3d: 0 };
  /** Client ports of sessions kept open on purpose (bystanders), and the process serving each. */
  private readonly kept = new Map<number, 'smtpd' | 'pop3d'>();

  /** A session that stays open through the cases (it shows they do not affect another session): not lingering. */
  keepOpen(w: Wire, by: 'smtpd' | 'pop3d'): void {
    this.kept.set(w.localPort, by);
  }

  release(w: Wire): void {
    this.kept.delete(w.localPort);
  }

  /**
   * Waits (5 s at most) until no session lingers and the serving processes hold no more sockets than at rest;
   * names the case that left one (a socket never closed is a descriptor lost for good).
   */
  private async noLingering(what: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    const held = (): string => {
      const now = this.socketFds();
      // not root: one process serves both, and holds every bystander
      const one = this.pids.smtpd === this.pids.pop3d;
      const rest = (k: 'smtpd' | 'pop3d'): number => this.idleFds[k] + [...this.kept.values()].filter((v) => one || v === k).length;
      const over = (['smtpd', 'pop3d'] as const).filter((k) => now[k] > rest(k)).map((k) => `${k} holds ${now[k]} sockets, ${rest(k)} at rest`);
      return [...this.lingering(), ...over].join(', ');
    };
    while (held() !== '') {
      assert.ok(Date.now() < deadline, `${what}: sessions left open by the server after their clients closed: ${held()}`);
      await sleep(25);
    }
  }

  /** Waits until the first `n` health messages are in health@'s Maildir (30 s at most). */
  private async delivered(n: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (this.maildir('health').length < n) {
      assert.ok(Date.now() < deadline, `${this.healthLabels[n - 1] ?? 'start'}: health message ${n} not delivered within 30 s:\n${this.log().slice(-3000)}`);
      await sleep(20);
    }
  }

  /** smtp.queued lines naming this envelope sender so far (the SMTP process logs through its parent, a little later). */
  queuedFrom(sender: string): number {
    return this.log().split('\n').filter((l) => l.includes('smtp.queued') && l.includes(`from=${sender} `)).length;
  }

  private expectations: Array<{ sender: string; n: number; what: string }> = [];

  /**
   * The number of messages the case's sender must have had queued (0 for a refused, cut-off or smuggled one).
   * Checked at the next health(), once the health message's own smtp.queued line is in the log: the SMTP process
   * logs in order, so by then every event of the cases before it has arrived.
   */
  expectQueued(sender: string, n: number, what: string): void {
    this.expectations.push({ sender, n, what });
  }

  private checkExpectations(): void {
    const lines = this.log().split('\n').filter((l) => l.includes('smtp.queued'));
    for (const e of this.expectations) {
      const got = lines.filter((l) => l.includes(`from=${e.sender} `)).length;
      assert.equal(got, e.n, `${e.what}: ${got} message(s) queued from ${e.sender}, expected ${e.n}`);
    }
    this.expectations = [];
  }

  /** Files left in queue/tmp (a message abandoned halfway must leave none). */
  queueTmp(): string[] {
    const d = join(this.root, 'queue', 'tmp');
    return existsSync(d) ? readdirSync(d) : [];
  }

  /** Waits for the last health message, SIGTERM, then the exit; the mail root is removed. Asserts a clean stop (status 0). */
  async stop(): Promise<void> {
    let late: Error | undefined;
    await this.delivered(this.healthLabels.length).catch((err: unknown) => (late = err instanceof Error ? err : new Error('the last health message was not delivered')));
    const exited = new Promise<number | null>((r) => {
      if (this.child.exitCode !== null) r(this.child.exitCode);
      else this.child.once('exit', (code) => r(code));
    });
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), 30_000);
    const code = await exited;
    clearTimeout(timer);
    this.kill(); // delivery workers left behind, if any
    rmSync(this.dir, { recursive: true, force: true });
    if (late !== undefined) throw late;
    assert.equal(code, 0, `quail start did not stop cleanly:\n${this.log().slice(-3000)}`);
  }

  /** SIGKILL to the whole process group (after a failure). */
  kill(): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** The base64 of SASL PLAIN's `authzid NUL authcid NUL password`. */
export const plain = (user: string, password: string, authzid = ''): string => Buffer.from(`${authzid}\0${user}\0${password}`, 'utf8').toString('base64');

/**
 * The DATA rules of src/smtpd/README.md as an oracle, for a body `c` sent after `DATA` and followed by the
 * real `CRLF.CRLF`: a bare LF anywhere → 451 (and the connection closed), else a bare CR or a NUL → 554, else
 * 250. Only bodies in which that final terminator is the first `CRLF.CRLF` are asked about (`endsOnlyAtTheEnd`).
 */
export function dataVerdict(c: string): 250 | 451 | 554 {
  const s = `\r\n${c}\r\n`;
  for (let i = 2; i < s.length; i++) if (s[i] === '\n' && s[i - 1] !== '\r') return 451;
  for (let i = 2; i < s.length - 2; i++) if (s[i] === '\r' && s[i + 1] !== '\n') return 554;
  return c.includes('\0') ? 554 : 250;
}

/** True when the first `CRLF.CRLF` of the stream after DATA is the one the client appends after `c`. */
export const endsOnlyAtTheEnd = (c: string): boolean => `\r\n${c}\r\n.\r\n`.indexOf('\r\n.\r\n') === c.length + 2;

/** What an accepted body `c` becomes in the queue: CRLF → LF, a leading dot removed from each line (RFC 5321 4.5.2). */
export const decodedBody = (c: string): string => `${c}\r\n`.split('\r\n').slice(0, -1).map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\n').concat('\n');

const BYSTANDER = 'bystander@client.test';

/** An SMTP transaction left halfway through DATA (from its own address), kept open while the cases run. */
export async function openBystander(h: Hostile, tls = false): Promise<Wire> {
  const w = await Wire.connect(h.ports.smtp, { localAddress: freshLoopback() });
  assert.equal(await w.code(), 220);
  if (tls) {
    w.send('EHLO bystander.test\r\nSTARTTLS\r\n');
    assert.deepEqual([await w.code(), await w.code()], [250, 220]);
    await w.upgrade();
  }
  w.send(`EHLO bystander.test\r\nMAIL FROM:<${BYSTANDER}>\r\nRCPT TO:<${BOX}>\r\nDATA\r\n`);
  assert.deepEqual([await w.code(), await w.code(), await w.code(), await w.code()], [250, 250, 250, 354]);
  await w.write('Subject: bystander\r\nX-Bystander: yes\r\n\r\nthe first half, before every case\r\n');
  h.keepOpen(w, 'smtpd');
  return w;
}

/** The bystander's second half and end: accepted (250), queued once, delivered whole. */
export async function finishBystander(h: Hostile, w: Wire): Promise<void> {
  assert.equal(w.closed, false, 'the bystander session was closed by a case');
  await w.write('the second half, after every case\r\n.\r\nQUIT\r\n');
  assert.match(await w.reply(), /^250 /, `the bystander's message: ${w.received}`);
  assert.equal(await w.code(), 221);
  assert.ok(await w.closes());
  h.release(w);
  w.destroy();
  h.expectQueued(BYSTANDER, 1, 'the bystander');
  await h.health('the bystander');
  assert.deepEqual(h.queueTmp(), [], 'queue/tmp keeps files of abandoned messages');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const mine = h.maildir('box').map((f) => readFileSync(f, 'latin1')).filter((t) => t.includes('X-Bystander: yes'));
    if (mine.length === 1) {
      assert.match(mine[0] ?? '', /\nthe first half, before every case\nthe second half, after every case\n$/);
      return;
    }
    assert.ok(Date.now() < deadline, `the bystander's message was not delivered once (${mine.length})`);
    await sleep(50);
  }
}
