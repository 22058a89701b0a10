// As root: quail start binds, then the process serving the port runs as control/quailuser; restart, HUP, TERM.
// tier: system (needs quail start)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  connectionHolders,
  listeningInode,
  MAIN,
  procUids,
  smtpLockstep,
  socketHolders,
} from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';

const sendMail = (port: number, to: string): Promise<string> =>
  smtpLockstep(port, [
    'HELO c',
    'MAIL FROM:<a@b.test>',
    `RCPT TO:<${to}>`,
    'DATA',
    'Subject: privsep\r\n\r\nhi\r\n.',
    'QUIT',
  ]);

interface State {
  pid: number;
  listeners: Array<{ port: number; kind: string }>;
  smtpd?: { pid: number; pids?: number[]; user: string; uid: number };
  crashes?: Record<string, number>;
}

void test(
  'as root: root keeps the SMTP port, a quailuser process reads every connection; mail is delivered; a dead child is replaced while the port stays open',
  { skip: process.getuid?.() !== 0 ? 'needs root' : false },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-privsep-'));
    chmodSync(root, 0o755); // the unprivileged child must be able to reach the mail root
    let child: ChildProcess | undefined;
    let log = '';
    try {
      child = spawn(
        process.execPath,
        [MAIN, 'start', '--root', root, '--init', '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
      const exited = new Promise<number | null>((r) => child?.on('exit', (code) => r(code)));
      const stateFile = join(root, 'run', 'quail.json');
      await waitFor(
        () => log.includes('quail.started') && existsSync(stateFile),
        15_000,
        () => `quail.started\n${log}`,
      );
      const state = (): State => JSON.parse(readFileSync(stateFile, 'utf8')) as State;
      const port = state().listeners.find((l) => l.kind === 'smtp')?.port ?? 0;
      const account = readFileSync(join(root, 'control', 'quailuser'), 'utf8').trim();
      const uid = Number(
        /^[^:]+:[^:]*:(\d+):/m.exec(
          readFileSync('/etc/passwd', 'utf8')
            .split('\n')
            .find((l) => l.startsWith(`${account}:`)) ?? '',
        )?.[1],
      );
      assert.ok(uid > 0, `${account} has a non-root uid`);

      // The root parent holds the listening socket for the whole run (so a child's death never closes the port). With
      // one SMTP process, that process accepts on it too and root never accepts (privchild.ts directAccept); with
      // several, root accepts without reading and hands each connection over. Each connection is read only by an
      // unprivileged SMTP process.
      const listenHolders = (): number[] => socketHolders(listeningInode(port)).sort((a, b) => a - b);
      const smtpdPids = (): number[] => state().smtpd?.pids ?? [state().smtpd?.pid ?? 0];
      const expectedHolders = (): number[] =>
        (smtpdPids().length === 1 ? [child?.pid ?? 0, ...smtpdPids()] : [child?.pid ?? 0]).sort((a, b) => a - b);
      assert.deepEqual(listenHolders(), expectedHolders(), 'root holds the listening socket (and a sole SMTP process)');
      const servedBy = (): Promise<number[]> => connectionHolders(port, child?.pid);
      const first = await servedBy();
      assert.equal(first.length, 1, `exactly one process holds the connection: ${first.join(',')}`);
      const smtpdPid = first[0] ?? 0;
      assert.notEqual(smtpdPid, child.pid, 'the root parent keeps no connection');
      assert.deepEqual(procUids(smtpdPid), [uid, uid, uid, uid]);
      assert.deepEqual(procUids(child.pid ?? 0), [0, 0, 0, 0]);
      // one of the SMTP processes (control/smtpdprocesses: one per two CPUs by default)
      assert.ok(smtpdPids().includes(smtpdPid), `${smtpdPid} is an SMTP process: ${smtpdPids().join(',')}`);

      const me = readFileSync(join(root, 'control', 'me'), 'utf8').trim();
      const newDir = join(root, 'alias', 'Maildir', 'new');
      assert.match(await sendMail(port, `postmaster@${me}`), /250 ok \d+ qp \S+\r\n221 /);
      await waitFor(
        () => readdirSync(newDir).length === 1,
        15_000,
        () => `delivery\n${log}`,
      );
      assert.match(readFileSync(join(newDir, readdirSync(newDir)[0] ?? ''), 'latin1'), /Subject: privsep/);
      // A delivery worker, forked by root and running as the mailbox's uid, has nothing of root's environment
      // (src/local/pool.ts): no variable of root's can reach a delivery or a program it runs (Node's own IPC
      // variables, NODE_CHANNEL_*, are all it has)
      const environ = (pid: number): string[] =>
        readFileSync(`/proc/${pid}/environ`, 'latin1')
          .split('\0')
          .filter((v) => v !== '' && !v.startsWith('NODE_CHANNEL_'));
      const workers = readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return readFileSync(`/proc/${d}/cmdline`, 'latin1').includes('delivery-worker.js');
          } catch {
            return false;
          }
        })
        .filter(
          (d) =>
            / \S+ (\d+) /.exec(readFileSync(`/proc/${d}/stat`, 'latin1').replace(/^.*\)/, ''))?.[1] ===
            String(child?.pid),
        );
      assert.ok(workers.length >= 1, 'a delivery worker runs under root');
      for (const w of workers) assert.deepEqual(environ(Number(w)), [], `worker ${w}'s environment`);

      process.kill(smtpdPid, 'SIGKILL');
      // The port never closes: a connection made at once is held until the new child takes it, then served.
      assert.match(await sendMail(port, `postmaster@${me}`), /250 ok \d+ qp \S+\r\n221 /);
      await waitFor(
        () => /smtpd\.crashed[^\n]*signal=SIGKILL[^\n]*\n(?:.*\n)*.*smtpd\.started/.test(log),
        15_000,
        () => `restart\n${log}`,
      );
      assert.ok(listenHolders().includes(child.pid ?? 0), 'the listening socket never left the parent');
      const again = (await servedBy())[0] ?? 0;
      assert.notEqual(again, smtpdPid);
      assert.deepEqual(procUids(again), [uid, uid, uid, uid]);
      await waitFor(
        () => smtpdPids().includes(again) && !smtpdPids().includes(smtpdPid) && state().crashes?.['smtpd'] === 1,
        15_000,
        () => `state updated\n${log}`,
      );
      assert.deepEqual(listenHolders(), expectedHolders(), 'the new SMTP process accepts as the first did');
      await waitFor(
        () => readdirSync(newDir).length === 2,
        15_000,
        () => `second delivery\n${log}`,
      );
      assert.match(
        spawnSync(process.execPath, [MAIN, 'status', '--root', root], { encoding: 'utf8' }).stdout,
        /crashes since start: smtpd 1/,
      );

      child.kill('SIGHUP');
      await waitFor(
        () => log.includes('quail.reloaded'),
        15_000,
        () => `reload\n${log}`,
      );
      const serving = smtpdPids();
      const after = (await servedBy())[0] ?? 0;
      assert.ok(serving.includes(after), `SIGHUP keeps the same serving processes: ${after} in ${serving.join(',')}`);
      assert.deepEqual(smtpdPids(), serving);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, log);
      for (const pid of serving)
        assert.equal(existsSync(`/proc/${pid}`), false, 'the SMTP children are gone after SIGTERM');
      assert.equal(listeningInode(port), undefined);
    } finally {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    }
  },
);
