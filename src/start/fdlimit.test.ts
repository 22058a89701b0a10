// quail start and too few file descriptors. A tiny limit stops the start with one line saying what to raise (exit
// tier: system (needs quail start as root and prlimit)
// 111), not EMFILE's stack trace out of Node's module loader. As root under a small one, flooded with idle connections
// until its processes run out: a message in the middle of DATA gets a 4xx or a 250 that is delivered (never a 250 that
// is lost); every listener kind closes the excess connections and says so once (not per connection) and spins no CPU;
// no process dies or is restarted, and once the flood is gone each kind serves again and mail is accepted and delivered.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  collecting,
  freePort,
  MAIN,
  processGroup,
  setupRoot,
  sleep,
  startProcess,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

/** Descriptors for every quail process: the least quail start accepts (src/tcpserver's MIN_OPEN_FILES). */
const LIMIT = 256;
const FLOOD = 600;
const KINDS = ['smtp', 'submission', 'pop3', 'odmr', 'admin'] as const;
type Kind = (typeof KINDS)[number];
/** The event each kind's out-of-descriptors report is logged as (in its child, or in root for what root accepts). */
const EVENT = /^\S+ error (smtp|smtpd|pop3|pop3d|odmr|odmrd|web|webd)\.error listener=(\S+) .*out of file descriptors/;

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
const skip =
  process.getuid?.() !== 0 ? 'needs root (privilege separation)' : !hasPrlimit ? 'needs prlimit (util-linux)' : false;

type Client = ReturnType<typeof collecting>;

/**
 * quail start under LIMIT on a fresh root (domain fd.test, mailbox box) with these control/listeners lines; after the
 * body no quail process may have died or been replaced; then the flood is closed, quail killed, the root removed.
 */
async function underLimit(
  tag: string,
  listeners: string,
  body: (quail: QuailProcess, root: string, flood: Client[]) => Promise<void>,
): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), `quail-${tag}-`));
  const flood: Client[] = [];
  let quail: QuailProcess | undefined;
  try {
    setupRoot(root, 'mx.fd.test', [{ domain: 'fd.test', boxes: ['box'] }]);
    writeFileSync(join(root, 'control', 'listeners'), listeners);
    quail = await startProcess(root, 30_000, {}, false, LIMIT);
    const pgid = quail.child.pid ?? 0;
    const pids = processGroup(pgid);
    await body(quail, root, flood);
    const now = processGroup(pgid);
    const log = quail.log();
    assert.deepEqual(
      pids.filter((p) => !now.includes(p)),
      [],
      `a quail process died or was replaced:\n${log.slice(-3000)}`,
    );
    assert.doesNotMatch(log, /uncaught|unhandled|\.died |\.crashed /i, 'a process failed');
  } finally {
    for (const c of flood) c.socket.destroy();
    quail?.killGroup();
    await sleep(200);
    rmSync(root, { recursive: true, force: true });
  }
}

void test(
  'quail start under a tiny descriptor limit (24): one line saying what to raise, exit 111',
  { skip: hasPrlimit ? false : 'needs prlimit (util-linux)' },
  () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-fdtiny-'));
    try {
      const r = spawnSync('prlimit', ['--nofile=24:24', process.execPath, MAIN, 'start', '--init', '--root', root], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 111, `exit status: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(
        r.stderr,
        /^quail: fatal: the limit on open files \(RLIMIT_NOFILE\) is 24, quail needs at least 256: raise it \(LimitNOFILE=65536 [^\n]*\n$/,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);

/** The reply to the end of DATA: the last complete reply line after the 354. */
const afterData = (text: string): string => /\r\n354 [^\r]*\r\n([^\r]*)\r\n/.exec(text)?.[1] ?? '';

void test(
  `out of descriptors (RLIMIT_NOFILE ${LIMIT}, ${FLOOD} idle connections): a message gets 4xx or is delivered, nothing restarts, service resumes`,
  { skip },
  async () => {
    const port = await freePort();
    // the listener's limits above the descriptors: the process itself runs out (authcheck=off: no DNS here)
    const line = `127.0.0.1:${port} smtp maxconn=2000 maxperip=2000 authcheck=off\n`;
    await underLimit('fdlimit', line, async (quail, root, flood) => {
      const newDir = join(root, 'domains', 'fd.test', 'box', 'Maildir', 'new');
      const delivered = (subject: string): boolean =>
        readdirSync(newDir).some((f) => readFileSync(join(newDir, f), 'latin1').includes(`Subject: ${subject}\n`));

      // a session in the middle of DATA before the flood
      const pre = collecting(port);
      await waitFor(
        () => pre.got().startsWith('220 '),
        10_000,
        () => `no banner: ${pre.got()}`,
      );
      pre.socket.write('EHLO pre.test\r\nMAIL FROM:<pre@client.test>\r\nRCPT TO:<box@fd.test>\r\nDATA\r\n');
      await waitFor(
        () => pre.got().includes('\r\n354 '),
        10_000,
        () => `no 354: ${pre.got()}`,
      );
      pre.socket.write('Subject: pre\r\n\r\nthe first half\r\n');

      for (let i = 0; i < FLOOD; i++) flood.push(collecting(port));
      // the flood has taken the descriptors: connections are being closed without a word
      await waitFor(
        () => flood.filter((c) => c.closed() && c.got() === '').length > 0,
        20_000,
        () => `no connection was turned away: ${flood.filter((c) => c.got().startsWith('220 ')).length} greeted`,
      );

      pre.socket.write('the second half\r\n.\r\nQUIT\r\n');
      await waitFor(
        () => pre.closed(),
        20_000,
        () => `the session in DATA did not end: ${pre.got()}`,
      );
      const preReply = afterData(pre.got());
      assert.match(preReply, /^(250|4\d\d) /, `the end of DATA out of descriptors: ${pre.got()}`);
      assert.match(pre.got(), /\r\n221 [^\r]*\r\n$/, `QUIT after it: ${pre.got()}`);

      for (const c of flood) c.socket.destroy();
      // service resumes: a fresh session's message is accepted (a few tries while the flood's sessions end)
      let after = '';
      await waitFor(
        async () => {
          const w = collecting(port);
          const sent = await new Promise<string>((resolve) => {
            w.socket.once('data', () =>
              w.socket.write(
                'EHLO after.test\r\nMAIL FROM:<after@client.test>\r\nRCPT TO:<box@fd.test>\r\nDATA\r\n' +
                  'Subject: after\r\n\r\nafter the flood\r\n.\r\nQUIT\r\n',
              ),
            );
            w.socket.on('close', () => resolve(w.got()));
          });
          after = sent;
          return afterData(sent).startsWith('250 ');
        },
        30_000,
        () => `no message accepted after the flood: ${after}`,
      );
      await waitFor(
        () => delivered('after') && (!preReply.startsWith('250 ') || delivered('pre')),
        30_000,
        () => `not delivered (pre: ${preReply}): ${readdirSync(newDir).length} in new/\n${quail.log().slice(-3000)}`,
      );
      if (!preReply.startsWith('250 '))
        assert.equal(delivered('pre'), false, 'a message refused with 4xx was delivered');
    });
  },
);

/** CPU time (clock ticks, user + system) each pid used so far. */
function cpuTicks(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, Number(f[11]) + Number(f[12]));
    } catch {
      // gone: underLimit's process check says so
    }
  }
  return out;
}

/** Whether a new client is served: the greeting (admin: the answer to a GET). */
async function served(port: number, kind: Kind): Promise<boolean> {
  const c = collecting(port);
  if (kind === 'admin') c.socket.write('GET / HTTP/1.1\r\nhost: fd.test\r\nconnection: close\r\n\r\n');
  const ok = (): boolean => (kind === 'admin' ? c.got().startsWith('HTTP/1.1 ') : /^(220 |\+OK )/.test(c.got()));
  await waitFor(() => ok() || c.closed(), 10_000, `${kind}: no answer`).catch(() => undefined);
  c.socket.destroy();
  return ok();
}

void test(
  `every listener kind out of descriptors (RLIMIT_NOFILE ${LIMIT}, ${FLOOD} connections each): reported once, no spin, served again`,
  { skip },
  async () => {
    const ports = new Map<Kind, number>();
    for (const k of KINDS) ports.set(k, await freePort());
    const port = (k: Kind): number => ports.get(k) ?? 0;
    // the listeners' limits above the descriptors: the processes themselves run out
    const opts = (k: Kind): string =>
      (k === 'admin' ? '' : ' maxconn=2000 maxperip=2000') + (k.startsWith('s') ? ' authcheck=off' : '');
    const lines = KINDS.map((k) => `127.0.0.1:${port(k)} ${k}${opts(k)}\n`).join('');
    await underLimit('fdkinds', lines, async (quail, _root, flood) => {
      const pids = processGroup(quail.child.pid ?? 0);
      for (const k of KINDS) assert.ok(await served(port(k), k), `${k} serves before the flood`);

      for (const k of KINDS) for (let i = 0; i < FLOOD; i++) flood.push(collecting(port(k)));
      const reports = (): string[] =>
        quail
          .log()
          .split('\n')
          .filter((l) => EVENT.test(l));
      // every listener's process ran out: each listener (or root, accepting for it) reported it
      const reported = (): Set<string> => new Set(reports().map((l) => EVENT.exec(l)?.[2] ?? ''));
      await waitFor(
        () => KINDS.every((k) => reported().has(`127.0.0.1:${port(k)}`)),
        60_000,
        () => `not every listener reported running out of descriptors:\n${quail.log().slice(-4000)}`,
      );
      // the flood stays while the processes are out of descriptors: none of them spins (a process busy in a loop of
      // failed accepts uses a whole CPU; this bounds CPU use, at half of the time that passed, not how long anything takes)
      const before = cpuTicks(pids);
      const t0 = process.hrtime.bigint();
      await sleep(2000);
      const after = cpuTicks(pids);
      const elapsedTicks = (Number(process.hrtime.bigint() - t0) / 1e9) * 100; // USER_HZ is 100 on Linux
      for (const pid of pids) {
        const used = (after.get(pid) ?? 0) - (before.get(pid) ?? 0);
        assert.ok(used < elapsedTicks / 2, `process ${pid} used ${used} ticks of CPU in ${elapsedTicks.toFixed(0)}`);
      }
      // reported once each (twice if a minute passed), not a line per connection turned away (thousands)
      const perListener = new Map<string, number>();
      for (const l of reports()) {
        const m = EVENT.exec(l);
        const key = `${m?.[1] ?? ''} ${m?.[2] ?? ''}`;
        perListener.set(key, (perListener.get(key) ?? 0) + 1);
      }
      for (const [key, n] of perListener) assert.ok(n <= 2, `${key} reported ${n} times:\n${reports().join('\n')}`);
      assert.match(reports()[0] ?? '', /raise it \(LimitNOFILE=65536 .*or lower the listeners' maxconn/);

      for (const c of flood) c.socket.destroy();
      // served again once the flood's descriptors are free (a few tries while its sessions end)
      for (const k of KINDS)
        await waitFor(
          () => served(port(k), k),
          60_000,
          () => `${k} not served after the flood:\n${quail.log().slice(-3000)}`,
        );
    });
  },
);
