// Section: POP3 logins per second and RETR throughput over a 10,000-message Maildir, quail's pop3d beside Dovecot's.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Control } from '../src/control/index.js';
import { openDirectory } from '../src/directory/index.js';
import { freePort, hasDovecotPop3, startDovecot, type RunningDovecot } from '../test/support/dovecot.js';
import { treeCpuMs } from './cpu.js';
import { startQuailProcess } from './quail-process.js';
import { Pop3Client } from './pop3client.js';
import type { BenchContext, BenchRow, BenchSection } from './types.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const PASSWORD = 'bench-secret';
const LOGIN_CLIENTS = 4;

function quail(args: readonly string[]): void {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`quail ${args.join(' ')}: ${r.stdout}${r.stderr}`);
}

/** A 4 KiB message as stored (LF line ends), with a unique Subject. */
function message(i: number): string {
  let m = `From: bench@client.test\nTo: joe@example.com\nSubject: pop3 bench ${i}\nMessage-ID: <${i}@bench>\n\n`;
  const line = `${'x'.repeat(70)}\n`;
  while (m.length + line.length <= 4096) m += line;
  return m;
}

/** N messages straight into cur/ (as if delivered and seen once), owned like the Maildir. */
function fill(maildir: string, n: number): number {
  const st = statSync(maildir);
  let bytes = 0;
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < n; i++) {
    const text = message(i);
    const file = join(maildir, 'cur', `${now - n + i}.M${i}P${process.pid}.bench,S=${text.length}:2,`);
    writeFileSync(file, text, { mode: 0o600 });
    bytes += text.length;
  }
  if (process.getuid?.() === 0) spawnSync('chown', ['-R', `${st.uid}:${st.gid}`, maildir]);
  return bytes;
}

/** SHA512-CRYPT (`$6$`) of the password, the scheme both servers verify in the comparison rows. */
function sha512crypt(pw: string): string | null {
  const r = spawnSync(
    'python3',
    ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_SHA512)))', pw],
    { encoding: 'utf8' },
  );
  const h = r.stdout.trim();
  return r.status === 0 && h.startsWith('$6$') ? h : null;
}

/** `quail start` serving POP3 on a port of its choosing (quail-process.ts, so QUAIL_BENCH_NODE_ARGS apply); its port. */
async function startQuail(root: string): Promise<{ child: ChildProcess; port: number; stop: () => Promise<void> }> {
  const q = await startQuailProcess(root, { args: ['--pop3', '127.0.0.1:0'] });
  const m = /pop3\.listening address=\S+ port=(\d+)/.exec(q.log());
  if (!m) {
    await q.stop();
    throw new Error(`quail start serves no POP3: ${q.log()}`);
  }
  return { child: q.child, port: Number(m[1]), stop: () => q.stop() };
}

/** Logins (USER, PASS, QUIT on a new connection) by `users.length` clients at once for at most count / budget. */
async function logins(
  port: number,
  users: readonly string[],
  count: number,
  budgetMs: number,
): Promise<{ rate: number; done: number; failed: number }> {
  const start = Date.now();
  let done = 0;
  let failed = 0;
  await Promise.all(
    users.map(async (user) => {
      while (done + failed < count && Date.now() - start < budgetMs) {
        const c = await Pop3Client.connect(port);
        const ok = (await c.cmd(`USER ${user}`)).ok && (await c.cmd(`PASS ${PASSWORD}`)).ok;
        await c.cmd('QUIT');
        c.close();
        if (ok) done++;
        else failed++;
      }
    }),
  );
  return { rate: done / ((Date.now() - start) / 1000), done, failed };
}

/**
 * One session: login (timed: the maildrop is listed), RETR 1..n one at a time, QUIT without deleting. `cpuMs` reads
 * the server's CPU so far (its whole process tree): read before the first RETR and after the last, before QUIT, so
 * that a per-session process (Dovecot's pop3) is still counted.
 */
async function retrAll(
  port: number,
  user: string,
  budgetMs: number,
  cpuMs: () => number,
): Promise<{ loginMs: number; msgs: number; bytes: number; seconds: number; total: number; cpuMs: number }> {
  const c = await Pop3Client.connect(port);
  const t0 = Date.now();
  await c.cmd(`USER ${user}`);
  const pass = await c.cmd(`PASS ${PASSWORD}`);
  if (!pass.ok) throw new Error(`login refused: ${pass.first}`);
  const stat = await c.cmd('STAT');
  const loginMs = Date.now() - t0;
  const total = Number(/^\+OK (\d+)/.exec(stat.first)?.[1] ?? 0);
  const cpu0 = cpuMs();
  const t1 = process.hrtime.bigint();
  let bytes = 0;
  let msgs = 0;
  for (let i = 1; i <= total && Date.now() - t0 < budgetMs; i++) {
    const r = await c.cmd(`RETR ${i}`, true);
    if (!r.ok) throw new Error(`RETR ${i}: ${r.first}`);
    bytes += r.bytes;
    msgs++;
  }
  const seconds = Number(process.hrtime.bigint() - t1) / 1e9;
  const cpu = cpuMs() - cpu0;
  await c.cmd('QUIT');
  c.close();
  return { loginMs, msgs, bytes, seconds, total, cpuMs: cpu };
}

/** A server under test: its POP3 port and its top process (its tree's CPU is read around the RETRs). */
interface Served {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
}

async function loginRows(
  server: Served,
  users: readonly string[],
  nLogins: number,
  ctx: BenchContext,
  note: string,
): Promise<BenchRow> {
  ctx.progress(`pop3: ${server.name} logins (${users.length} clients)`);
  const l = await logins(server.port, users, nLogins, ctx.caseBudgetMs);
  return {
    name: `${server.name}: logins, ${users.length} clients`,
    value: round(l.rate),
    unit: 'logins/s',
    note: `${l.done} logins${l.failed ? `, ${l.failed} FAILED` : ''}; ${note}`,
  };
}

/** RETR sessions per server after its warm-up one: more rounds, more CPU ticks per figure. */
const RETR_ROUNDS = 3;

/**
 * Every server reads the whole mailbox once (the warm-up: its first login + STAT), then RETR_ROUNDS more times,
 * the servers taking turns (the order turning each round), so that a slow spell of the machine falls on both
 * rather than on whichever ran second. Figures: the rounds together (bytes over seconds, CPU over RETRs).
 */
async function retrRows(servers: readonly Served[], ctx: BenchContext): Promise<BenchRow[]> {
  const budget = Math.max(ctx.caseBudgetMs, 60_000);
  const user = 'joe@example.com';
  type Run = Awaited<ReturnType<typeof retrAll>>;
  const firsts: Run[] = [];
  const runs: Run[][] = servers.map(() => []);
  for (const s of servers) {
    ctx.progress(`pop3: ${s.name} RETR (warm-up)`);
    firsts.push(await retrAll(s.port, user, budget, () => treeCpuMs(s.pid)));
  }
  for (let round_ = 0; round_ < RETR_ROUNDS; round_++) {
    for (let k = 0; k < servers.length; k++) {
      const i = (k + round_) % servers.length;
      const s = servers[i] as Served;
      ctx.progress(`pop3: ${s.name} RETR, round ${round_ + 1} of ${RETR_ROUNDS}`);
      runs[i]?.push(await retrAll(s.port, user, budget, () => treeCpuMs(s.pid)));
    }
  }
  return servers.flatMap((s, i) => {
    const rs = runs[i] ?? [];
    const sum = (f: (r: Run) => number): number => rs.reduce((t, r) => t + f(r), 0);
    const msgs = sum((r) => r.msgs);
    const each = (f: (r: Run) => number): string => rs.map(f).join(', ');
    return [
      {
        name: `${s.name}: login + STAT, ${rs[0]?.total ?? 0} msgs`,
        value: Math.max(...rs.map((r) => r.loginMs)),
        unit: 'ms',
        note: `the slowest of ${rs.length}: ${each((r) => r.loginMs)} ms; first session: ${firsts[i]?.loginMs ?? '?'} ms`,
      },
      {
        name: `${s.name}: RETR ${msgs} x 4 KiB`,
        value: round(sum((r) => r.bytes) / 1e6 / sum((r) => r.seconds)),
        unit: 'MB/s',
        note: `${round(msgs / sum((r) => r.seconds))} msgs/s, one at a time, ${rs.length} sessions: ${each((r) => round(r.bytes / 1e6 / r.seconds))} MB/s`,
      },
      {
        name: `${s.name}: server CPU per RETR`,
        value: Math.round((sum((r) => r.cpuMs) * 1000) / Math.max(1, msgs)),
        unit: 'us',
        note: `every process of the server (/proc: schedstat, and exited children in 10 ms ticks); per session ${each((r) => Math.round((r.cpuMs * 1000) / Math.max(1, r.msgs)))} us`,
      },
    ];
  });
}

const round = (x: number): number => Math.round(x * 10) / 10;

export const pop3Section: BenchSection = {
  name: 'pop3',
  async run(ctx) {
    const n = ctx.n(10_000);
    for (const d of [dirname(ctx.workDir), ctx.workDir]) chmodSync(d, statSync(d).mode | 0o011);
    const root = join(ctx.workDir, 'root');
    quail(['init', '--root', root, '--me', 'bench.test']);
    quail(['domain', 'add', 'example.com', '--root', root]);
    const users = ['joe@example.com', ...Array.from({ length: LOGIN_CLIENTS - 1 }, (_, i) => `b${i}@example.com`)];
    for (const u of users) quail(['user', 'add', u, '--password', PASSWORD, '--root', root]);
    // The clients log in with USER/PASS over plain TCP on loopback (as against Dovecot): quail allows that only
    // for a client that control/tcp.pop3 names (no loopback exemption by default).
    writeFileSync(join(root, 'control', 'tcp.pop3'), '127.0.0.1:allow,QUAIL_CLEARAUTH="1"\n');
    const maildir = join(root, 'domains', 'example.com', 'joe', 'Maildir');
    ctx.progress(`pop3: writing ${n} messages`);
    const bytes = fill(maildir, n);
    for (const f of readdirSync(join(maildir, 'cur'))) readFileSync(join(maildir, 'cur', f)); // same page cache for both
    const nLogins = Math.max(200, Math.floor(n / 10));
    const rows: BenchRow[] = [{ name: `mailbox`, value: n, unit: 'msgs', note: `${round(bytes / 1e6)} MB` }];

    const q = await startQuail(root);
    let dovecot: RunningDovecot | undefined;
    try {
      ctx.progress('pop3: quail logins with scrypt');
      const l = await logins(q.port, users, nLogins, ctx.caseBudgetMs);
      rows.push({
        name: `quail: logins, ${users.length} clients, scrypt`,
        value: round(l.rate),
        unit: 'logins/s',
        note: `${l.done} logins; quail's default hash (32 MiB, by design slow)`,
      });
      const h = sha512crypt(PASSWORD);
      if (!h) throw new Error('python3 could not make a SHA512-CRYPT hash');
      const dir = await openDirectory({ root });
      for (const u of users) {
        const [local = '', domain = ''] = u.split('@');
        await dir.updateMailbox(domain, local, { passwordHash: h });
      }
      await dir.close();
      if (q.child.pid === undefined) throw new Error('quail start has no process id');
      const servers: Served[] = [{ name: 'quail', port: q.port, pid: q.child.pid }];
      rows.push(await loginRows(servers[0] as Served, users, nLogins, ctx, 'directory (SQLite), SHA512-CRYPT'));

      if (!hasDovecotPop3()) {
        rows.push(...(await retrRows(servers, ctx)));
        rows.push({
          name: 'dovecot: not installed',
          value: 0,
          unit: '-',
          note: 'apt-get install dovecot-pop3d for the comparison',
        });
        return rows;
      }
      // Dovecot beside quail (both serve the same Maildir, which nobody changes), so that their RETRs can alternate.
      const passwd = join(ctx.workDir, 'dovecot-passwd');
      writeFileSync(passwd, users.map((u) => `${u}:{SHA512-CRYPT}${h}\n`).join(''), { mode: 0o644 });
      const owner = new Control(root).single('quailuser').value ?? '';
      const id = (flag: string): number => Number(spawnSync('id', [flag, owner], { encoding: 'utf8' }).stdout.trim());
      const pop3Port = await freePort();
      mkdirSync(join(ctx.workDir, 'dovecot'));
      dovecot = await startDovecot(join(ctx.workDir, 'dovecot'), {
        root,
        uid: id('-u'),
        gid: id('-g'),
        pop3Port,
        passwdFile: passwd,
        quota: false,
        // Its POP3 marks what a session retrieved \Seen at QUIT, renaming those files in cur/, and every later session
        // of either server would then meet a changed mailbox (quail's pop3d lists it again). quail's pop3d never
        // changes a message's name (neither does qmail-pop3d); so that both read the same unchanged Maildir:
        extra: ['pop3_no_flag_updates = yes'],
      });
      if (dovecot.pid === undefined) throw new Error('dovecot has no process id');
      const d: Served = { name: 'dovecot', port: pop3Port, pid: dovecot.pid };
      servers.push(d);
      rows.push(await loginRows(d, users, nLogins, ctx, 'passwd-file, SHA512-CRYPT'));
      rows.push(...(await retrRows(servers, ctx)));
      const ratio = (suffix: string): string => {
        const a = rows.find((r) => r.name.startsWith('quail:') && r.name.endsWith(suffix));
        const b = rows.find((r) => r.name.startsWith('dovecot:') && r.name.endsWith(suffix));
        return a && b && b.value > 0 ? `${round(a.value / b.value)}x` : '?';
      };
      rows.push({
        name: 'quail / dovecot',
        value: 0,
        unit: 'ratio',
        note: `logins ${ratio(`logins, ${users.length} clients`)}, login+STAT time ${ratio(`${n} msgs`)}, RETR MB/s ${ratio('4 KiB')}, CPU per RETR ${ratio('CPU per RETR')}`,
      });
    } finally {
      await dovecot?.stop();
      await q.stop();
    }
    return rows;
  },
};
