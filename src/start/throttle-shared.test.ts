// One failed-login count across services: under quail start as root (SMTP, POP3 and the web admin each in its own
// process as control/quailuser), failures spread over SMTP AUTH, POP3 and the web admin's login count in root's one
// table, so they reach the slowdown that as many failures in one service reach; a service asks root only for an
// attempt that may be slowed (a clean login costs no round trip), and a success is not refused for another login.
// Real sockets on 127.0.0.1, a real SQLite directory; counts, never times.
// tier: system (needs quail start as root)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LoginThrottle } from '../throttle/index.js';
import { startQuail, type Running } from './supervisor.js';
import { MAIN } from '../../test/support/start.js';
import { talk } from '../../test/support/smtpd.js';
import { userPass } from '../../test/support/pop3d.js';
import { waitFor } from '../../test/support/wait.js';

const OPTIONS = { baseMs: 1, maxMs: 60_000 } as const;

/** Root's table, with each attempt a service process asked it about (the login and the wait answered). */
class Recording extends LoginThrottle {
  readonly asked: string[] = [];
  override attempt(ip: string, login: string): number {
    const wait = super.attempt(ip, login);
    this.asked.push(`${login} ${wait}`);
    return wait;
  }
}

function cli(root: string, ...args: string[]): void {
  const r = spawnSync(process.execPath, [MAIN, ...args, '--root', root], { encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: ${r.stderr}`);
}

const smtpAuth = (port: number, login: string, pw: string): Promise<string> =>
  talk(port, `EHLO c\r\nAUTH PLAIN ${Buffer.from(`\0${login}\0${pw}`).toString('base64')}\r\nQUIT\r\n`);

/** The web admin's login form (its CSRF token and cookie), then the login: the session cookie, or null if refused. */
async function webLogin(port: number, login: string, password: string): Promise<string | null> {
  const form = await fetch(`http://127.0.0.1:${port}/login`);
  const pre = /name="pre" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
  const cookie = (form.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const r = await fetch(`http://127.0.0.1:${port}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams({ pre, login, password }).toString(),
  });
  assert.equal(r.status, 303);
  const session = r.headers.getSetCookie().find((c) => c.startsWith('quail='));
  return session === undefined ? null : session;
}

/** Another client's address: only the login's count can slow it. */
const ELSEWHERE = '192.0.2.7';

void test(
  'quail start as root: failures over SMTP AUTH, POP3 and the web admin share one count; a clean login asks root nothing',
  { skip: process.getuid?.() !== 0 ? 'needs root (a process per service)' : false },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-throttle-shared-'));
    chmodSync(root, 0o755);
    const table = new Recording(OPTIONS);
    const log: string[] = [];
    let running: Running | undefined;
    try {
      cli(root, 'init', '--me', 'shared.test');
      cli(root, 'domain', 'add', 'example.com');
      cli(root, 'user', 'add', 'joe@example.com', '--password', 'joe pw');
      cli(root, 'user', 'add', 'ann@example.com', '--password', 'ann pw');
      writeFileSync(
        join(root, 'control', 'listeners'),
        '127.0.0.1:0 smtp\n127.0.0.1:0 pop3 plaintext=loopback\n127.0.0.1:0 admin\n',
      );
      writeFileSync(join(root, 'control', 'tcp.smtp'), '127.:allow,QUAIL_CLEARAUTH="1"\n');
      running = await startQuail({
        root,
        log: { event: (name, fields) => void log.push(`${name} ${JSON.stringify(fields)}`) },
        loginThrottle: table,
      });
      const port = (kind: string): number => running?.listeners.find((l) => l.kind === kind)?.port ?? 0;
      const [smtp, pop3, web] = [port('smtp'), port('pop3'), port('admin')];

      // a clean login in each service: served without asking root
      assert.match(await userPass(pop3, 'ann@example.com', 'ann pw'), /^\+OK/);
      assert.match(await smtpAuth(smtp, 'ann@example.com', 'ann pw'), /\r\n235 /);
      assert.notEqual(await webLogin(web, 'ann@example.com', 'ann pw'), null);
      assert.deepEqual(table.asked, [], 'no round trip to root for an attempt nothing failed against');

      // one wrong password in each service in turn: each counts in root's table, and each service after the first
      // asks root, which answers the wait of every failure so far, whichever service saw it
      const alone = new LoginThrottle(OPTIONS); // the same failures in one service
      const rounds: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
        ['smtp', async () => assert.match(await smtpAuth(smtp, 'joe@example.com', 'wrong'), /\r\n535 /)],
        [
          'pop3',
          async () =>
            assert.equal(await userPass(pop3, 'joe@example.com', 'wrong'), '-ERR [AUTH] authentication failed'),
        ],
        ['web', async () => assert.equal(await webLogin(web, 'joe@example.com', 'wrong'), null)],
        ['smtp', async () => assert.match(await smtpAuth(smtp, 'JOE@example.com', 'wrong'), /\r\n535 /)],
        [
          'pop3',
          async () =>
            assert.equal(await userPass(pop3, 'joe%example.com', 'wrong'), '-ERR [AUTH] authentication failed'),
        ],
      ];
      for (const [i, [service, fail]] of rounds.entries()) {
        table.asked.length = 0;
        await fail();
        if (i > 0)
          assert.deepEqual(table.asked, [`joe@example.com ${alone.delayFor(ELSEWHERE, 'joe@example.com')}`], service);
        alone.failed('127.0.0.1', 'joe@example.com');
        const want = alone.delayFor(ELSEWHERE, 'joe@example.com');
        await waitFor(
          () => table.delayFor(ELSEWHERE, 'joe@example.com') === want,
          10_000,
          `${service}: root counted it`,
        );
      }
      assert.equal(
        table.delayFor(ELSEWHERE, 'joe@example.com'),
        16,
        'five failures in three services: one count of five',
      );

      // another login from the same address is slowed by the address's count, never refused
      table.asked.length = 0;
      assert.match(await smtpAuth(smtp, 'ann@example.com', 'ann pw'), /\r\n235 /);
      assert.match(await userPass(pop3, 'ann@example.com', 'ann pw'), /^\+OK/);
      assert.equal(table.delayFor(ELSEWHERE, 'ann@example.com'), 0, "ann's own count is clean");
      assert.equal(table.delayFor(ELSEWHERE, 'joe@example.com'), 16, "and joe's is untouched");
      // joe's right password in the web admin forgets joe's count everywhere: SMTP no longer asks about the login
      assert.notEqual(await webLogin(web, 'joe@example.com', 'joe pw'), null);
      await waitFor(() => table.delayFor(ELSEWHERE, 'joe@example.com') === 0, 10_000, 'the success reached root');
    } finally {
      await running?.stop(1000);
      rmSync(root, { recursive: true, force: true });
    }
  },
);
