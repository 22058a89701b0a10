// As root (issue 12 part 5, "little root"): the scheduler and remote delivery run as control/quailuser; root only spawns local deliveries.
// tier: system (needs quail start)
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parsePasswd } from '../users/index.js';
import {
  initOwner,
  listenerPort,
  quail,
  startProcess,
  swaks,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

/** Real, effective, saved and filesystem uid of a process. */
const uids = (pid: number): number[] =>
  (/^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '').split(/\s+/).map(Number);

/** Every process holding a file descriptor on socket `inode`. */
function holders(inode: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${p}/fd/${fd}`) === `socket:[${inode}]`) {
          out.push(Number(p));
          break;
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  return out;
}

/** Inodes of the established TCP connections to 127.0.0.2:port (the client ends), from /proc/net/tcp. */
function connectionsTo(port: number): string[] {
  const want = `0200007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[2] === want && f[3] === '01')
    .map((f) => f[9] ?? '');
}

/** Inode of the unix socket bound at a path under `dir`, from /proc/net/unix. */
function unixSocketUnder(dir: string): string[] {
  return readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => (f[7] ?? '').startsWith(`${dir}/`))
    .map((f) => f[6] ?? '');
}

/** Where a process's descriptors point (files by path, sockets as socket:[inode]). */
function fdTargets(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** An SMTP server on 127.0.0.2 that holds its answer to the final dot until released. */
async function slowServer(): Promise<{ server: Server; port: number; got: string[]; release: () => void }> {
  const got: string[] = [];
  let waiting: Array<() => void> = [];
  let released = false;
  const server = createServer((s: Socket) => {
    s.on('error', () => undefined);
    s.write('220 slow ESMTP\r\n');
    let buf = '';
    let data: string | undefined;
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (data !== undefined) {
          if (line !== '.') {
            data += `${line}\n`;
            continue;
          }
          got.push(data);
          data = undefined;
          const answer = (): boolean => s.write('250 ok\r\n');
          if (released) answer();
          else waiting.push(() => void answer());
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'QUIT') return void s.end('221 bye\r\n');
        if (verb === 'DATA') data = '';
        s.write(verb === 'DATA' ? '354 go\r\n' : '250 ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  server.unref();
  return {
    server,
    port: (server.address() as AddressInfo).port,
    got,
    release: () => {
      released = true;
      for (const w of waiting) w();
      waiting = [];
    },
  };
}

interface State {
  pid: number;
  send?: { pid: number; user: string; uid: number; restarts: number };
}

void test(
  'as root: scheduler and remote SMTP run as quailuser; root holds no remote connection or queue file; local deliveries as each mailbox uid; a dead send process is restarted',
  { skip: process.getuid?.() !== 0 ? 'needs root' : false },
  async () => {
    const nobody = parsePasswd(readFileSync('/etc/passwd', 'latin1')).find((e) => e.name === 'nobody');
    assert.ok(nobody && nobody.uid !== 0, 'the test needs the system account nobody');
    const root = mkdtempSync(join(tmpdir(), 'quail-send-'));
    const remote = await slowServer();
    let q: QuailProcess | undefined;
    try {
      // quail.test's mailboxes belong to quailuser (the queue's owner), other.test's to nobody (a third uid).
      quail(['init', '--root', root, '--me', 'mail.test']);
      const owner = initOwner(root);
      const ctl = (name: string): string => join(root, 'control', name);
      chmodSync(root, 0o755);
      writeFileSync(ctl('virtualdomains'), 'quail.test:quail.test\nother.test:other.test\n');
      writeFileSync(ctl('rcpthosts'), 'quail.test\nother.test\n', { flag: 'a' });
      writeFileSync(ctl('tcp.smtp'), '127.0.0.1:allow,RELAYCLIENT=""\n:allow\n');
      writeFileSync(ctl('smtproutes'), `remote.test:127.0.0.2:${remote.port}\n`);
      const home = (d: string): string => join(root, 'domains', d);
      writeFileSync(
        join(root, 'users', 'assign'),
        [
          `+quail.test-:${owner.name}:${owner.uid}:${owner.gid}:${home('quail.test')}:-::`,
          `+other.test-:nobody:${nobody.uid}:${nobody.gid}:${home('other.test')}:-::`,
          '.',
        ]
          .map((l) => `${l}\n`)
          .join(''),
      );
      quail(['newu', '--root', root]);
      for (const [d, who] of [
        ['quail.test', owner],
        ['other.test', nobody],
      ] as const) {
        for (const sub of ['', 'box', 'box/Maildir', 'box/Maildir/cur', 'box/Maildir/new', 'box/Maildir/tmp']) {
          mkdirSync(join(home(d), sub), { recursive: true, mode: sub.includes('Maildir') ? 0o700 : 0o755 });
          chownSync(join(home(d), sub), who.uid, who.gid);
        }
        writeFileSync(join(home(d), '.qmail-box'), './box/Maildir/\n', { mode: 0o644 });
        chownSync(join(home(d), '.qmail-box'), who.uid, who.gid);
      }

      q = await startProcess(root);
      const log = q.log;
      const rootPid = q.child.pid ?? 0;
      const state = (): State => JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as State;
      const sendPid = state().send?.pid ?? 0;
      assert.ok(sendPid > 0 && sendPid !== rootPid, `quail.json names the send process: ${JSON.stringify(state())}`);
      assert.deepEqual(state().send, { pid: sendPid, user: owner.name, uid: owner.uid, restarts: 0 });
      assert.deepEqual(uids(sendPid), [owner.uid, owner.uid, owner.uid, owner.uid], 'the scheduler runs as quailuser');
      assert.deepEqual(uids(rootPid), [0, 0, 0, 0], 'the parent keeps root, to spawn deliveries');
      assert.match(
        quail(['status', '--root', root]),
        new RegExp(`send process: pid ${sendPid} as ${owner.name} \\(uid ${owner.uid}\\)\\n`),
      );

      // The scheduler's wake-up socket is the send process's; the root parent has nothing of the queue open.
      const wake = unixSocketUnder(join(root, 'queue', 'wake'));
      assert.equal(wake.length, 1, 'one scheduler watches the queue');
      assert.deepEqual(holders(wake[0] ?? ''), [sendPid]);
      assert.deepEqual(
        fdTargets(rootPid).filter((t) => t.startsWith(join(root, 'queue'))),
        [],
      );

      // 1. Remote: while the remote server holds its answer, the connection belongs to the send process only.
      const port = listenerPort(root, 'smtp');
      const out = swaks(port, ['--to', 'far@remote.test', '--header', 'Subject: little root remote']);
      assert.equal(out.status, 0, out.out);
      await waitFor(
        () => remote.got.length === 1,
        30_000,
        () => `the remote server got nothing\n${log()}`,
      );
      const conns = connectionsTo(remote.port);
      assert.equal(conns.length, 1, `one connection to the remote server: ${conns.join(',')}`);
      assert.deepEqual(holders(conns[0] ?? ''), [sendPid], 'only the send process holds the SMTP client connection');
      assert.match(remote.got[0] ?? '', /Subject: little root remote/);
      remote.release();
      await waitFor(
        () => /send\.delivery [^\n]*result=success[^\n]*\n(?:.*\n)*.*send\.end/.test(log()),
        30_000,
        () => `no remote success\n${log()}`,
      );
      assert.deepEqual(
        fdTargets(rootPid).filter((t) => t.startsWith(join(root, 'queue'))),
        [],
      );

      // 2. Local: each Maildir file belongs to its mailbox's uid (nobody's got a private copy of the message).
      for (const [d, uid] of [
        ['quail.test', owner.uid],
        ['other.test', nobody.uid],
      ] as const) {
        const r = swaks(port, ['--to', `box@${d}`, '--header', `Subject: little root ${d}`]);
        assert.equal(r.status, 0, r.out);
        const dir = join(home(d), 'box', 'Maildir', 'new');
        await waitFor(
          () => readdirSync(dir).length === 1,
          30_000,
          () => `nothing in ${dir}\n${log()}`,
        );
        const file = join(dir, readdirSync(dir)[0] ?? '');
        assert.equal(statSync(file).uid, uid, `${file} belongs to uid ${uid}`);
        assert.match(
          readFileSync(file, 'latin1'),
          new RegExp(
            `^Return-Path: <sender@client\\.test>\\nDelivered-To: ${d.replace('.', '\\.')}-box@${d.replace('.', '\\.')}\\n[\\s\\S]*Subject: little root ${d.replace('.', '\\.')}\\n`,
          ),
        );
      }
      assert.doesNotMatch(log(), /lspawn\.refused/);

      // 3. The send process killed: logged, counted, started again as quailuser; mail still flows.
      process.kill(sendPid, 'SIGKILL');
      await waitFor(
        // (no pid while it restarts: quail.json says `restarting` until the new one runs)
        () => (state().send?.restarts ?? 0) === 1 && (state().send?.pid ?? sendPid) !== sendPid,
        30_000,
        () => `not restarted\n${log()}`,
      );
      assert.match(log(), new RegExp(`sendd\\.crashed pid=${sendPid} code="" signal=SIGKILL restarts=1 `));
      const again = state().send?.pid ?? 0;
      assert.deepEqual(uids(again), [owner.uid, owner.uid, owner.uid, owner.uid]);
      const r = swaks(port, ['--to', 'box@other.test', '--header', 'Subject: after restart']);
      assert.equal(r.status, 0, r.out);
      const dir = join(home('other.test'), 'box', 'Maildir', 'new');
      // (by name, not by count: a kill right after a delivery, before its state was written, delivers that one again)
      await waitFor(
        () => readdirSync(dir).some((f) => readFileSync(join(dir, f), 'latin1').includes('Subject: after restart\n')),
        30_000,
        () => `no delivery after the restart\n${log()}`,
      );

      // 4. SIGHUP and SIGALRM reach the scheduler in the send process; SIGTERM stops everything.
      q.child.kill('SIGHUP');
      await waitFor(
        () => /send\.reload/.test(log()),
        10_000,
        () => `no send.reload\n${log()}`,
      );
      q.child.kill('SIGTERM');
      assert.deepEqual(await q.exited, { code: 0, signal: null }, log());
      assert.throws(() => statSync(`/proc/${again}`), 'the send process is gone after SIGTERM');
    } finally {
      remote.release();
      q?.killGroup();
      remote.server.close();
      rmSync(root, { recursive: true, force: true });
    }
  },
);
