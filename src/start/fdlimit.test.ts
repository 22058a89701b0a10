// As root: quail start under a small descriptor limit, flooded with idle connections until its SMTP process runs out
// tier: system (needs quail start as root and prlimit)
// of descriptors. A message in the middle of DATA then gets a 4xx or a 250 that is delivered (never a 250 that is lost),
// no process dies or is restarted, and once the flood is gone the next message is accepted and delivered.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { collecting, freePort, MAIN, processGroup, setupRoot, sleep, waitFor } from '../../test/support/start.js';

/** Descriptors for every quail process: enough to start, and run out of after about a hundred sessions. */
const LIMIT = 128;
const FLOOD = 400;

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

/** The reply to the end of DATA: the last complete reply line after the 354. */
const afterData = (text: string): string => /\r\n354 [^\r]*\r\n([^\r]*)\r\n/.exec(text)?.[1] ?? '';

void test(
  `out of descriptors (RLIMIT_NOFILE ${LIMIT}, ${FLOOD} idle connections): a message gets 4xx or is delivered, nothing restarts, service resumes`,
  {
    skip:
      process.getuid?.() !== 0
        ? 'needs root (privilege separation)'
        : !hasPrlimit
          ? 'needs prlimit (util-linux)'
          : false,
  },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-fdlimit-'));
    const flood: Array<ReturnType<typeof collecting>> = [];
    let pgid = 0;
    try {
      setupRoot(root, 'mx.fd.test', [{ domain: 'fd.test', boxes: ['box'] }]);
      const port = await freePort();
      // the listener's limits above the descriptors: the process itself runs out (authcheck=off: no DNS here)
      writeFileSync(
        join(root, 'control', 'listeners'),
        `127.0.0.1:${port} smtp maxconn=2000 maxperip=2000 authcheck=off\n`,
      );
      const child = spawn('prlimit', [`--nofile=${LIMIT}:${LIMIT}`, process.execPath, MAIN, 'start', '--root', root], {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      pgid = child.pid ?? 0;
      let log = '';
      child.stdout.on('data', (c: Buffer) => (log += c.toString()));
      child.stderr.on('data', (c: Buffer) => (log += c.toString()));
      await waitFor(
        () => log.includes('quail.started'),
        30_000,
        () => `quail start did not start:\n${log}`,
      );
      const pids = processGroup(pgid);
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
      // the flood has taken every descriptor: sessions are being closed without a word (libuv's spare descriptor)
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
        () => `not delivered (pre: ${preReply}): ${readdirSync(newDir).length} in new/\n${log.slice(-3000)}`,
      );
      if (!preReply.startsWith('250 '))
        assert.equal(delivered('pre'), false, 'a message refused with 4xx was delivered');
      const now = processGroup(pgid);
      assert.deepEqual(
        pids.filter((p) => !now.includes(p)),
        [],
        `a quail process died or was replaced:\n${log.slice(-3000)}`,
      );
      assert.doesNotMatch(log, /uncaught|unhandled|\.died |\.crashed /i, 'a process failed');
    } finally {
      for (const c of flood) c.socket.destroy();
      if (pgid > 0) {
        try {
          process.kill(-pgid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await sleep(200);
      rmSync(root, { recursive: true, force: true });
    }
  },
);
