// Test helpers (not a test) for the attack battery (src/smtpd/README.md, "The attack battery"): one real
// `quail start` with every listener an attacker reaches (smtp, submission, pop3, odmr, admin), the memory of its
// children read from /proc, and the check that every listener still serves a real client and no child restarted.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshLoopback, Wire } from './hostile-wire.js';
import { freePort, quail, sleep, startProcess, swaks, type QuailProcess } from './start.js';

const DOMAIN = 'attack.test';
export const BOX = `box@${DOMAIN}`;
export const PASSWORD = 'attack-secret';
/** databytes of the smtp listener: 64 MiB, so that a 50 MB header meets the header cap, not databytes. */
const DATABYTES = 64 << 20;
/** maxrcpt of the smtp listener. */
export const MAXRCPT = 50;

export type Kind = 'smtp' | 'submission' | 'pop3' | 'odmr' | 'admin';
export type Child = 'smtpd' | 'pop3d' | 'odmrd' | 'webd';

export class Attack {
  private constructor(
    readonly dir: string,
    readonly root: string,
    readonly q: QuailProcess,
    readonly ports: Readonly<Record<Kind, number>>,
    readonly pids: Readonly<Record<Child, number>>,
    /** Every process of each kind (several SMTP processes: control/smtpdprocesses), from their `started` lines. */
    readonly all: Readonly<Record<Child, readonly number[]>>,
  ) {}

  static async start(name: string): Promise<Attack> {
    const dir = mkdtempSync(join(tmpdir(), `quail-${name}-`));
    spawnSync('chmod', ['755', dir]);
    const root = join(dir, 'root');
    quail(['init', '--root', root, '--me', 'mail.attack.test']);
    quail(['domain', 'add', DOMAIN, '--root', root]);
    quail(['user', 'add', BOX, '--password', PASSWORD, '--root', root]);
    // plain-text logins from the loopback clients, as in the hostile battery (the TLS-only default: strict.test.ts)
    writeFileSync(join(root, 'control', 'tcp.smtp'), '127.:allow,QUAIL_CLEARAUTH="1"\n');
    writeFileSync(join(root, 'control', 'tcp.pop3'), '127.:allow,QUAIL_CLEARAUTH="1"\n');
    // the inbound checks' DNS goes to loopback, where nothing answers: temperror at once, no query leaves the host
    writeFileSync(join(root, 'control', 'dnsservers'), '127.0.0.1\n');
    // a client that stops reading is dropped after timeoutsmtpd (smtp and odmr): 5 s here instead of 1,200, and
    // after idle= on pop3 (5 s instead of 600)
    writeFileSync(join(root, 'control', 'timeoutsmtpd'), '5\n');
    const distinct = new Set<number>();
    while (distinct.size < 5) distinct.add(await freePort()); // a port just freed may be handed out again
    const [smtp = 0, submission = 0, pop3 = 0, odmr = 0, admin = 0] = [...distinct];
    const ports: Readonly<Record<Kind, number>> = { smtp, submission, pop3, odmr, admin };
    writeFileSync(
      join(root, 'control', 'listeners'),
      [
        // maxnoop=5: a flood of refused RCPTs ends before the tarpit (1 s more per error past 10) would slow it down
        // maxunsent=0 (no limit): the client that never reads (hostile-huge.test.ts) loops EHLO/MAIL, which the default
        // would end with 421 after 20 MAILs, long before its replies fill the socket (src/smtpd/transactions.test.ts)
        `127.0.0.1:${ports.smtp} smtp databytes=${DATABYTES} maxrcpt=${MAXRCPT} maxnoop=5 maxunsent=0`,
        `127.0.0.1:${ports.submission} submission`,
        `127.0.0.1:${ports.pop3} pop3 idle=5`,
        `127.0.0.1:${ports.odmr} odmr`,
        `127.0.0.1:${ports.admin} admin`,
        '',
      ].join('\n'),
    );
    const q = await startProcess(root, 30_000, {}, false);
    const text = q.log();
    const of = (c: Child): number[] =>
      [...text.matchAll(new RegExp(`${c}\\.started pid=(\\d+)`, 'g'))].map((m) => Number(m[1]));
    const all = { smtpd: of('smtpd'), pop3d: of('pop3d'), odmrd: of('odmrd'), webd: of('webd') };
    const pid = (c: Child): number => all[c][0] ?? 0;
    const pids = { smtpd: pid('smtpd'), pop3d: pid('pop3d'), odmrd: pid('odmrd'), webd: pid('webd') };
    for (const [k, v] of Object.entries(pids)) assert.ok(v > 0, `${k}.started not in the log:\n${text}`);
    return new Attack(dir, root, q, ports, pids, all);
  }

  /** The child's resident memory now, in MiB (VmRSS of /proc/PID/status; of several SMTP processes, the largest). */
  rss(child: Child): number {
    const of = (pid: number): number =>
      Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    return Math.round(Math.max(...this.all[child].map(of)) / 1024);
  }

  /** Runs `body` while sampling the child's memory; returns the highest VmRSS seen (MiB). */
  async peakRss(child: Child, body: () => Promise<void>): Promise<number> {
    let peak = this.rss(child);
    let running = true;
    const sampler = (async (): Promise<void> => {
      while (running) {
        peak = Math.max(peak, this.rss(child));
        await sleep(20);
      }
    })();
    try {
      await body();
    } finally {
      running = false;
      await sampler;
    }
    return Math.max(peak, this.rss(child));
  }

  /**
   * After an attack: the same four children serve (each `*.started` logged once, none `crashed`, their pids alive),
   * nothing was logged at level error nor as an uncaught exception, and a real client of each protocol is served:
   * swaks on smtp (delivered), python3 poplib on pop3 (logs in), curl on the web admin (the login page), a greeting
   * on odmr.
   */
  async serving(what: string): Promise<void> {
    this.sameChildren(what);
    const s = swaks(this.ports.smtp, ['--to', BOX, '--header', `X-Attack: ${what.replace(/[^ -~]/g, '?')}`]);
    assert.equal(s.status, 0, `${what}: swaks was not served:\n${s.out}`);
    const py = spawnSync(
      'python3',
      [
        '-c',
        'import poplib,sys\np=poplib.POP3("127.0.0.1",int(sys.argv[1]),timeout=20)\np.user(sys.argv[2])\np.pass_(sys.argv[3])\nprint(p.stat())\np.quit()',
        String(this.ports.pop3),
        BOX,
        PASSWORD,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(py.status, 0, `${what}: poplib was not served:\n${py.stdout}${py.stderr}`);
    const curl = spawnSync(
      'curl',
      ['-s', '-m', '20', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${this.ports.admin}/login`],
      { encoding: 'utf8' },
    );
    assert.equal(curl.stdout, '200', `${what}: curl got no login page (${curl.stdout}) ${curl.stderr}`);
    const o = await Wire.connect(this.ports.odmr, { localAddress: freshLoopback() });
    try {
      assert.match(await o.reply(), /^220 /, `${what}: no ODMR greeting`);
      o.send('QUIT\r\n');
      assert.match(await o.reply(), /^221 /, `${what}: ODMR QUIT`);
    } finally {
      o.destroy();
    }
    this.sameChildren(what);
  }

  /** No child restarted or died, no error-level line, no uncaught exception. */
  sameChildren(what: string): void {
    const log = this.q.log();
    const tail = (): string => log.slice(-4000);
    for (const c of Object.keys(this.pids) as Child[]) {
      const n = this.all[c].length;
      assert.equal(log.match(new RegExp(`${c}\\.started `, 'g'))?.length, n, `${what}: ${c} was restarted:\n${tail()}`);
      for (const pid of this.all[c])
        assert.ok(readFileSync(`/proc/${pid}/status`, 'utf8').length > 0, `${what}: ${c} ${pid} is gone`);
    }
    assert.doesNotMatch(log, /\.(?:crashed|died) /, `${what}: a child crashed:\n${tail()}`);
    assert.doesNotMatch(log, /uncaught|unhandled/i, `${what}: an uncaught exception:\n${tail()}`);
    const errors = log.split('\n').filter((l) => /^\S+ error /.test(l));
    assert.deepEqual(errors, [], `${what}: error-level lines in the log`);
  }

  async stop(): Promise<void> {
    this.q.killGroup();
    await this.q.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A raw TCP connection from a fresh loopback address; errors (EPIPE, ECONNRESET after our own reset) are ignored. */
export function raw(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port, localAddress: freshLoopback() });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

/**
 * Writes `total` bytes made of `unit` repeated, 1 MiB at a time, each write waiting for the kernel to take the
 * previous one; stops early (returns the bytes written) when the server closes or stops reading for `stuckMs`.
 */
export async function stream(s: Socket, unit: Buffer, total: number, stuckMs = 3000): Promise<number> {
  const block = Buffer.concat(Array.from({ length: Math.max(1, Math.floor((1 << 20) / unit.length)) }, () => unit));
  let sent = 0;
  while (sent < total && !s.destroyed) {
    const piece = total - sent >= block.length ? block : block.subarray(0, total - sent);
    const ok = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), stuckMs);
      s.write(piece, (err) => {
        clearTimeout(t);
        resolve(err === undefined || err === null);
      });
    });
    if (!ok) break;
    sent += piece.length;
  }
  return sent;
}
