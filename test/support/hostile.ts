// Test helpers (not a test) for issue 12's hostile-input battery: one real `quail start` per test file, the health
// check run after every case, bystander sessions. The raw client and the checks of replies are in hostile-wire.ts.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword, openDirectory } from '../../src/directory/index.js';
import { freshLoopback, Wire } from './hostile-wire.js';
import { MAIN, sleep } from './start.js';

export const DOMAIN = 'hostile.test';
/** The mailbox hostile cases send to, and the one the health checks send to (counted separately). */
export const BOX = `box@${DOMAIN}`;
const HEALTH = `health@${DOMAIN}`;
export const PASSWORD = 'box-secret';

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

  private constructor(
    readonly dir: string,
    readonly root: string,
    private readonly child: ChildProcess,
    ports: Ports,
    pids: Hostile['pids'],
    text: () => string,
  ) {
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
    // The battery also drives plain-text logins (USER/PASS, AUTH before STARTTLS) from its loopback clients: the
    // per-client opt-out an administrator would write; the TLS-only default is tested in smtpd/strict.test.ts.
    writeFileSync(join(root, 'control', 'tcp.smtp'), '127.:allow,QUAIL_CLEARAUTH="1"\n');
    writeFileSync(join(root, 'control', 'tcp.pop3'), '127.:allow,QUAIL_CLEARAUTH="1"\n');
    // Each case has its own envelope sender (c<n>@client.test) to count what was queued, also after AUTH: the rule
    // that an authenticated sender must be the login's own is off here (tested in smtpd/strict.test.ts).
    writeFileSync(
      join(root, 'control', 'listeners'),
      [
        '127.0.0.1:0 smtp senderauth=off',
        '127.0.0.1:0 submission senderauth=off',
        '127.0.0.1:0 pop3',
        '127.0.0.1:0 pop3 tls=implicit',
        '',
      ].join('\n'),
    );
    // The battery logs in hundreds of times: its mailboxes' passwords are hashed with scrypt at ln=4 instead of 15
    // (the parameters travel in the hash), so that the CPU goes to the protocol, not to 0.1 s per password check.
    const boxes = ['box', 'health', ...extra];
    for (const box of boxes) cli(root, ['user', 'add', `${box}@${DOMAIN}`, '--no-password']);
    const directory = await openDirectory({ root });
    try {
      for (const box of boxes)
        await directory.updateMailbox(DOMAIN, box, {
          passwordHash: await hashPassword(PASSWORD, { ln: 4, r: 8, p: 1 }),
        });
    } finally {
      await directory.close();
    }
    const child = spawn(process.execPath, [MAIN, 'start', '--root', root], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
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
    const st = JSON.parse(readFileSync(state, 'utf8')) as {
      listeners: Array<{ port: number; kind: string }>;
      smtpd?: { pid: number; pids?: number[] };
    };
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
    const pids = {
      parent,
      smtpd: asRoot ? (st.smtpd?.pid ?? 0) : parent,
      pop3d: asRoot ? logged(/pop3d\.started pid=(\d+)/) : parent,
    };
    const h = new Hostile(dir, root, child, ports, pids, () => text);
    // several SMTP processes (control/smtpdprocesses; one per two CPUs by default)
    h.smtpdPids = asRoot ? (st.smtpd?.pids ?? [pids.smtpd]) : [parent];
    for (const [k, v] of Object.entries({ ...ports, ...pids }))
      assert.ok(v > 0, `${k} not found in quail's state or log:\n${text}`);
    h.idleFds = h.socketFds();
    return h;
  }

  /** Files in a mailbox's Maildir (new and cur). */
  maildir(box: string): string[] {
    const base = join(this.root, 'domains', DOMAIN, box, 'Maildir');
    return ['new', 'cur'].flatMap((d) =>
      existsSync(join(base, d)) ? readdirSync(join(base, d)).map((f) => join(base, d, f)) : [],
    );
  }

  /**
   * Runs a test's body; when it fails because a serving process died (a crash shows first as a closed
   * connection somewhere), the error says so, with the log lines, before the symptom.
   */
  async guard(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (err) {
      const dead = /smtpd\.(?:died|crashed)|pop3d\.(?:died|crashed)|quail\.stopped/;
      for (let i = 0; i < 40 && !dead.test(this.log()) && this.child.exitCode === null; i++) await sleep(25); // the parent logs it a little later
      const log = this.log();
      const at = log.search(dead);
      if (at < 0 && this.child.exitCode === null) throw err;
      const first = err instanceof Error ? err.message : String(err);
      // what the dying process printed (its stack trace goes to quail's stderr) and the died line
      const context = log.slice(
        Math.max(0, log.lastIndexOf('\n', Math.max(0, at - 2000))),
        at < 0 ? undefined : log.indexOf('\n', at),
      );
      throw new Error(`a serving process died:\n${context}\nthe first failure it caused: ${first}`, { cause: err });
    }
  }

  /** The same processes still serve: no child died, none was replaced. */
  assertSamePids(what: string): void {
    this.scan();
    const tail = (): string => this.log().slice(-4000);
    assert.equal(this.child.exitCode, null, `${what}: quail start exited:\n${tail()}`);
    assert.deepEqual(this.seen.died, [], `${what}: a serving process died:\n${tail()}`);
    assert.ok(
      this.seen.smtpdStarts <= this.smtpdPids.length,
      `${what}: the SMTP process was started again:\n${tail()}`,
    );
    for (const [k, pid] of [...Object.entries(this.pids), ...this.smtpdPids.map((p) => ['smtpd', p] as const)])
      assert.ok(existsSync(`/proc/${pid}`), `${what}: the ${k} process ${pid} is gone:\n${tail()}`);
    // an exception inside a session is logged smtp.error / pop3.error: hostile input must never cause one
    assert.deepEqual(this.seen.errors, [], `${what}: a session failed with an exception`);
    const st = JSON.parse(readFileSync(join(this.root, 'run', 'quail.json'), 'utf8')) as {
      smtpd?: { pid: number; pids?: number[] };
    };
    if (process.getuid?.() === 0)
      assert.deepEqual(st.smtpd?.pids ?? [st.smtpd?.pid], this.smtpdPids, `${what}: an SMTP process was replaced`);
  }

  /** What the log said so far, read line by line once (the log grows to megabytes; the checks run hundreds of times). */
  private readonly seen = {
    to: 0,
    queued: new Map<string, number>(),
    errors: [] as string[],
    died: [] as string[],
    smtpdStarts: 0,
  };

  private scan(): void {
    const text = this.log();
    const end = text.lastIndexOf('\n') + 1;
    if (end <= this.seen.to) return;
    for (const line of text.slice(this.seen.to, end).split('\n')) {
      const from = / smtp\.queued .*? from=(\S+) /.exec(line)?.[1];
      if (from !== undefined) this.seen.queued.set(from, (this.seen.queued.get(from) ?? 0) + 1);
      else if (/ (?:smtp|pop3|smtpd|pop3d)\.error /.test(line)) this.seen.errors.push(line);
      else if (/smtpd\.died|pop3d\.died|uncaught|unhandled/i.test(line)) this.seen.died.push(line);
      else if (line.includes(' smtpd.started ')) this.seen.smtpdStarts++;
    }
    this.seen.to = end;
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
   *
   * A session whose client end is still open in another process is not this test's: test files run side by side,
   * and one that found a port free (freePort) can connect to it after this instance bound the same port. Such a
   * session is left out here and in the descriptor count (`foreign`). A client this process closed is an orphan
   * (inode 0) or gone, so every session of the cases is still seen.
   */
  lingering(): { sessions: string[]; foreign: { smtpd: number; pop3d: number } } {
    const ports = new Set(Object.values(this.ports));
    const entries: Array<{ local: string; remote: string; state: string; inode: string }> = [];
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      if (!existsSync(file)) continue;
      for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length > 9) entries.push({ local: f[1] ?? '', remote: f[2] ?? '', state: f[3] ?? '', inode: f[9] ?? '' });
      }
    }
    const mine = new Set<string>();
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
        if (m?.[1] !== undefined) mine.add(m[1]);
      } catch {
        // closed meanwhile
      }
    }
    const portOf = (a: string): number => Number.parseInt(a.split(':')[1] ?? '', 16);
    const sessions: string[] = [];
    const foreign = { smtpd: 0, pop3d: 0 };
    for (const e of entries) {
      const local = portOf(e.local);
      if (!ports.has(local) || this.kept.has(portOf(e.remote)) || (e.state !== '01' && e.state !== '08')) continue;
      const client = entries.find((c) => c.local === e.remote && c.remote === e.local);
      if (client !== undefined && client.inode !== '0' && !mine.has(client.inode)) {
        foreign[local === this.ports.pop3 || local === this.ports.pop3s ? 'pop3d' : 'smtpd']++;
        continue;
      }
      sessions.push(`port ${local} ${e.state === '01' ? 'ESTABLISHED' : 'CLOSE_WAIT'} from ${e.remote}`);
    }
    return { sessions, foreign };
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
    return { smtpd: this.smtpdPids.reduce((n, pid) => n + count(pid), 0), pop3d: count(this.pids.pop3d) };
  }

  /** Every SMTP process (the first is pids.smtpd); as not root, the one process. */
  smtpdPids: readonly number[] = [];

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
      const { sessions, foreign } = this.lingering();
      // not root: one process serves both, and holds every bystander and every foreign session
      const one = this.pids.smtpd === this.pids.pop3d;
      const rest = (k: 'smtpd' | 'pop3d'): number =>
        this.idleFds[k] +
        [...this.kept.values()].filter((v) => one || v === k).length +
        (one ? foreign.smtpd + foreign.pop3d : foreign[k]);
      const over = (['smtpd', 'pop3d'] as const)
        .filter((k) => now[k] > rest(k))
        .map((k) => `${k} holds ${now[k]} sockets, ${rest(k)} at rest`);
      return [...sessions, ...over].join(', ');
    };
    while (held() !== '') {
      assert.ok(
        Date.now() < deadline,
        `${what}: sessions left open by the server after their clients closed: ${held()}`,
      );
      await sleep(25);
    }
  }

  /** Waits until the first `n` health messages are in health@'s Maildir (30 s at most). */
  private async delivered(n: number): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (this.maildir('health').length < n) {
      assert.ok(
        Date.now() < deadline,
        `${this.healthLabels[n - 1] ?? 'start'}: health message ${n} not delivered within 30 s:\n${this.log().slice(-3000)}`,
      );
      await sleep(20);
    }
  }

  /** smtp.queued lines naming this envelope sender so far (the SMTP process logs through its parent, a little later). */
  queuedFrom(sender: string): number {
    this.scan();
    return this.seen.queued.get(sender) ?? 0;
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
    for (const e of this.expectations) {
      const got = this.queuedFrom(e.sender);
      assert.equal(got, e.n, `${e.what}: ${got} message(s) queued from ${e.sender}, expected ${e.n}`);
    }
    this.expectations = [];
  }

  /**
   * Messages being received in queue/tmp (`<id>.<pid>.mess`/`.env`, docs/QUEUE.md R1/R2): one abandoned halfway
   * must leave none. (`.upd` files are the scheduler's envelope rewrites, not sessions.)
   */
  queueTmp(): string[] {
    const d = join(this.root, 'queue', 'tmp');
    return existsSync(d) ? readdirSync(d).filter((f) => /\.(?:mess|env)$/.test(f)) : [];
  }

  /** Waits for the last health message, SIGTERM, then the exit; the mail root is removed. Asserts a clean stop (status 0). */
  async stop(): Promise<void> {
    let late: Error | undefined;
    await this.delivered(this.healthLabels.length).catch(
      (err: unknown) => (late = err instanceof Error ? err : new Error('the last health message was not delivered')),
    );
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
    const mine = h
      .maildir('box')
      .map((f) => readFileSync(f, 'latin1'))
      .filter((t) => t.includes('X-Bystander: yes'));
    if (mine.length === 1) {
      assert.match(mine[0] ?? '', /\nthe first half, before every case\nthe second half, after every case\n$/);
      return;
    }
    assert.ok(Date.now() < deadline, `the bystander's message was not delivered once (${mine.length})`);
    await sleep(50);
  }
}
