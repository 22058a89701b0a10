// Black-box tests of the POP3 server on loopback: RFC 1939 verbs, states, edge cases of the Maildir backend.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createPop3Server, type Pop3ClientRules, type Pop3Server, type Pop3ServerOptions } from './index.js';
import { makeMaildir, PopClient, putMessage, TableAuthenticator } from '../../test/support/pop3d.js';

interface Fixture {
  dir: string;
  maildir: string;
  port: number;
  server: Pop3Server;
  auth: TableAuthenticator;
  events: { name: string; fields: Record<string, unknown> }[];
}

async function fixture(extra: Partial<Pop3ServerOptions> = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'quail-pop3-'));
  const maildir = makeMaildir(join(dir, 'domains', 'example.org', 'joe', 'Maildir'));
  const table = join(dir, 'users');
  writeFileSync(
    table,
    `joe@example.org secret ${maildir}\nnobox@example.org secret ${join(dir, 'missing')}\n` +
      `file@example.org secret ${table}\nuni@example.org pässwörd ${maildir}\n`,
  );
  const auth = new TableAuthenticator(table);
  const events: Fixture['events'] = [];
  const server = createPop3Server({
    authenticator: auth,
    throttle: { baseMs: 1, maxMs: 4 },
    // these tests speak plain POP3 over loopback: a client rule allows it (the default would refuse USER before STLS)
    clientRules: () => ({ clearAuth: true }),
    log: (name, fields) => events.push({ name, fields: { ...fields } }),
    ...extra,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { dir, maildir, port, server, auth, events };
}

async function loggedIn(f: Fixture, login = 'joe@example.org'): Promise<PopClient> {
  const c = await PopClient.open(f.port);
  assert.match((await c.line()) ?? '', /^\+OK /);
  assert.match(await c.cmd(`USER ${login}`), /^\+OK/);
  const r = await c.cmd('PASS secret');
  assert.match(r, /^\+OK \d+ messages/, r);
  return c;
}

void describe('pop3d server', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await fixture();
  });
  afterEach(async () => {
    await f.server.close();
    rmSync(f.dir, { recursive: true, force: true });
  });

  void it('lists, retrieves with CRLF and dot-stuffing, and deletes on QUIT', async () => {
    const a = putMessage(f.maildir, 'Subject: one\n\n.hidden dot\nbody\n');
    putMessage(f.maildir, 'Subject: two\r\n\r\nalready crlf\r\n');
    const c = await loggedIn(f);
    assert.deepEqual(readdirSync(join(f.maildir, 'new')), [], 'new/ moved to cur/ on first access');
    assert.ok(readdirSync(join(f.maildir, 'cur')).includes(`${a}:2,`));
    assert.equal(await c.cmd('STAT'), '+OK 2 65');
    assert.equal(await c.cmd('LIST'), '+OK 2 messages (65 octets)');
    assert.deepEqual(await c.body(), ['1 35', '2 30']);
    assert.equal(await c.cmd('LIST 2'), '+OK 2 30');
    assert.equal(await c.cmd('UIDL 1'), `+OK 1 ${a}`);
    assert.equal(await c.cmd('RETR 1'), '+OK 35 octets');
    const raw = await c.rawBody();
    assert.equal(raw.toString(), 'Subject: one\r\n\r\n..hidden dot\r\nbody\r\n');
    assert.equal(raw.length - 1, 35, 'LIST size = bytes sent, without the stuffed dot');
    assert.equal(await c.cmd('DELE 1'), '+OK message 1 deleted');
    assert.equal(await c.cmd('DELE 1'), '-ERR message 1 already deleted');
    assert.match(await c.cmd('RETR 1'), /^-ERR/);
    assert.equal(await c.cmd('STAT'), '+OK 1 30');
    assert.equal(await c.cmd('QUIT'), '+OK quail POP3 server signing off (1 messages deleted)');
    await c.closed();
    assert.deepEqual(readdirSync(join(f.maildir, 'cur')).length, 1);
    const session = f.events.find((e) => e.name === 'pop3.session');
    assert.deepEqual(
      { retrieved: session?.fields.retrieved, deleted: session?.fields.deleted, end: session?.fields.end },
      { retrieved: 1, deleted: 1, end: 'quit' },
    );
    assert.ok(!JSON.stringify(f.events).includes('secret'), 'the password is never logged');
  });

  void it('DELE then RSET keeps everything; a dropped connection deletes nothing', async () => {
    putMessage(f.maildir, 'Subject: a\n\nx\n');
    putMessage(f.maildir, 'Subject: b\n\ny\n');
    let c = await loggedIn(f);
    await c.cmd('DELE 1');
    await c.cmd('DELE 2');
    assert.equal(await c.cmd('STAT'), '+OK 0 0');
    assert.match(await c.cmd('RSET'), /^\+OK maildrop has 2 messages/);
    assert.equal(await c.cmd('QUIT'), '+OK quail POP3 server signing off (0 messages deleted)');
    c = await loggedIn(f);
    await c.cmd('DELE 1');
    c.destroy(); // no QUIT
    // the lock is released when the server has seen the drop: a new login succeeds, and still finds both
    for (;;) {
      c = await PopClient.open(f.port);
      await c.line();
      await c.cmd('USER joe@example.org');
      const r = await c.cmd('PASS secret');
      if (r.startsWith('+OK')) {
        assert.equal(r, '+OK 2 messages (34 octets)');
        break;
      }
      assert.match(r, /^-ERR \[IN-USE\]/);
      c.destroy();
    }
    await c.cmd('DELE 1');
    await c.cmd('DELE 2');
    await c.cmd('QUIT');
    assert.equal(readdirSync(join(f.maildir, 'cur')).length, 0);
  });

  void it('a second session for the mailbox gets [IN-USE]; a message arriving mid-session waits for the next', async () => {
    putMessage(f.maildir, 'Subject: first\n\n1\n');
    const c = await loggedIn(f);
    const d = await PopClient.open(f.port);
    await d.line();
    await d.cmd('USER joe%EXAMPLE.org');
    assert.equal(await d.cmd('PASS secret'), '-ERR [IN-USE] mailbox is in use by another session');
    d.destroy();
    putMessage(f.maildir, 'Subject: second\n\n2\n');
    assert.match(await c.cmd('STAT'), /^\+OK 1 /);
    await c.cmd('DELE 1');
    await c.cmd('QUIT');
    const e = await loggedIn(f);
    assert.match(await e.cmd('STAT'), /^\+OK 1 /);
    assert.equal(await e.cmd('TOP 1 0'), '+OK top of message follows');
    assert.deepEqual(await e.body(), ['Subject: second', '']);
    await e.cmd('DELE 1');
    await e.cmd('QUIT');
  });

  void it('TOP counts body lines after the header; TOP 0 is the header and the blank line', async () => {
    putMessage(f.maildir, 'A: 1\nB: 2\n\nl1\n.l2\nl3\n');
    const c = await loggedIn(f);
    assert.match(await c.cmd('TOP 1 2'), /^\+OK/);
    assert.deepEqual(await c.body(), ['A: 1', 'B: 2', '', 'l1', '.l2']);
    assert.match(await c.cmd('TOP 1 0'), /^\+OK/);
    assert.deepEqual(await c.body(), ['A: 1', 'B: 2', '']);
    assert.match(await c.cmd('TOP 1 99'), /^\+OK/);
    assert.deepEqual(await c.body(), ['A: 1', 'B: 2', '', 'l1', '.l2', 'l3']);
    assert.match(await c.cmd('TOP 1'), /^-ERR/);
    assert.match(await c.cmd('TOP 1 -1'), /^-ERR/);
    await c.cmd('DELE 1');
    await c.cmd('QUIT');
  });

  void it('UIDL of odd names: the unique name before ":", or a stable digest when POP3 cannot carry it', async () => {
    putMessage(f.maildir, 'x\n', { name: '1700000000.M1P2.host\\057x,S=2:2,S', cur: true });
    putMessage(f.maildir, 'y\n', { name: '1700000001.odd name é', cur: true });
    const c = await loggedIn(f);
    assert.match(await c.cmd('UIDL'), /^\+OK/);
    const lines = await c.body();
    assert.equal(lines[0], '1 1700000000.M1P2.host\\057x,S=2');
    assert.match(lines[1] ?? '', /^2 H[0-9a-f]{40}$/);
    await c.cmd('QUIT');
    const d = await loggedIn(f);
    await d.cmd('UIDL');
    assert.deepEqual(await d.body(), lines, 'stable across sessions');
    await d.cmd('DELE 1');
    await d.cmd('DELE 2');
    await d.cmd('QUIT');
  });

  void it('garbage, unknown verbs, verbs in the wrong state and overlong lines get -ERR without closing', async () => {
    const c = await PopClient.open(f.port);
    await c.line();
    assert.equal(await c.cmd('\x01\x02 garbage'), '-ERR unknown command');
    assert.equal(await c.cmd('STAT'), '-ERR not in this state');
    assert.equal(await c.cmd('PASS secret'), '-ERR send USER first');
    assert.equal(await c.cmd(`USER ${'x'.repeat(5000)}`), '-ERR line too long');
    assert.equal(await c.cmd('APOP joe 0123'), '-ERR unknown command');
    assert.equal(await c.cmd('CONSTRUCTOR'), '-ERR unknown command');
    assert.equal(await c.cmd('__proto__'), '-ERR unknown command');
    assert.equal(await c.cmd('noop'), '-ERR not in this state');
    assert.match(await c.cmd('capa'), /^\+OK/);
    const caps = await c.body();
    assert.ok(caps.includes('USER') && caps.includes('SASL PLAIN') && caps.includes('RESP-CODES'), caps.join());
    assert.ok(!caps.includes('STLS'), 'no STLS without a certificate');
    assert.match(await c.cmd('STLS'), /^-ERR/);
    assert.match(await c.cmd('QUIT'), /^\+OK/);
    await c.closed();
  });

  void it('too many errors close the connection', async () => {
    const c = await PopClient.open(f.port);
    await c.line();
    for (let i = 0; i < 9; i++) assert.equal(await c.cmd('BOGUS'), '-ERR unknown command');
    assert.equal(await c.cmd('BOGUS'), '-ERR unknown command');
    assert.equal(await c.line(), '-ERR too many errors, closing');
    await c.closed();
  });

  void it('input after the last answer is read and dropped, so the socket is closed (it was kept open for good)', async () => {
    for (const last of [
      'QUIT',
      'BOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS',
    ]) {
      const c = await PopClient.open(f.port);
      await c.line();
      c.write(`${last}\r\n`);
      let r: string | null;
      do r = await c.line();
      while (r !== null && !/^\+OK quail POP3 server signing off|^-ERR too many/.test(r));
      c.write('NOOP\r\n');
      await c.closed();
    }
    const closed = await Promise.race([
      f.server.close().then(() => true),
      new Promise((r) => setTimeout(() => r(false), 3000)),
    ]);
    assert.equal(closed, true, 'close() still waits for sockets the sessions left behind');
  });

  void it('a non-ASCII password sent as UTF-8 logs in (PASS is decoded as UTF-8, like AUTH PLAIN)', async () => {
    const c = await PopClient.open(f.port);
    await c.line();
    await c.cmd('USER uni@example.org');
    assert.equal(await c.cmd('PASS passwörd'), '-ERR [AUTH] authentication failed');
    await c.cmd('USER uni@example.org');
    c.write(Buffer.concat([Buffer.from('PASS '), Buffer.from('pässwörd', 'utf8'), Buffer.from('\r\n')]));
    assert.match((await c.line()) ?? '', /^\+OK \d+ messages/);
    await c.cmd('QUIT');
  });

  void it('a wrong password and an unknown mailbox get the same answer; three failures close', async () => {
    const c = await PopClient.open(f.port);
    await c.line();
    await c.cmd('USER joe@example.org');
    const wrongPass = await c.cmd('PASS nope');
    await c.cmd('USER nobody@example.org');
    const noUser = await c.cmd('PASS secret');
    assert.equal(wrongPass, noUser);
    assert.equal(wrongPass, '-ERR [AUTH] authentication failed');
    await c.cmd('USER x');
    assert.equal(await c.cmd('PASS y'), '-ERR [AUTH] authentication failed', 'bare name without default domain');
    await c.closed();
    const refused = f.events.filter((e) => e.name === 'pop3.refused' && e.fields.reason === 'credentials');
    assert.ok(refused.length >= 3);
  });

  void it('the slowdown per login counts every spelling of one mailbox (local part case, user%domain) as one', async () => {
    const g = await fixture({ throttle: { baseMs: 400, maxMs: 4000 } });
    try {
      const fail = async (login: string, from?: string): Promise<number> => {
        const c = await PopClient.open(g.port, false, from);
        await c.line();
        await c.cmd(`USER ${login}`);
        const t0 = Date.now();
        assert.equal(await c.cmd('PASS wrong'), '-ERR [AUTH] authentication failed');
        const waited = Date.now() - t0;
        await c.cmd('QUIT');
        return waited;
      };
      await fail('joe@example.org'); // from 127.0.0.1
      await fail('joe@example.org'); // waits 400 ms (the address and the login): the login is at 800 ms now
      // from another address, which has no failures: only the login's count can slow these
      for (const [spelling, from] of [
        ['JOE@example.org', '127.0.0.2'],
        ['Joe%Example.ORG', '127.0.0.3'],
      ] as const) {
        const waited = await fail(spelling, from);
        assert.ok(waited >= 780, `${spelling} from ${from} is slowed as joe@example.org (${waited} ms)`);
      }
    } finally {
      await g.server.close();
      rmSync(g.dir, { recursive: true, force: true });
    }
  });

  void it('a missing maildir or one that is not a directory: -ERR [SYS/TEMP], and the server goes on', async () => {
    for (const login of ['nobox@example.org', 'file@example.org']) {
      const c = await PopClient.open(f.port);
      await c.line();
      await c.cmd(`USER ${login}`);
      assert.equal(await c.cmd('PASS secret'), '-ERR [SYS/TEMP] mailbox is unavailable, try again later');
      await c.cmd('QUIT');
    }
    const c = await loggedIn(f);
    await c.cmd('QUIT');
  });

  void it('AUTH PLAIN, with an initial response and as a continuation; other authzid refused', async () => {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    let c = await PopClient.open(f.port);
    await c.line();
    assert.match(await c.cmd(`AUTH PLAIN ${b64('\0joe@example.org\0secret')}`), /^\+OK 0 messages/);
    await c.cmd('QUIT');
    c = await PopClient.open(f.port);
    await c.line();
    assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
    assert.match(await c.cmd(b64('joe@example.org\0joe@example.org\0secret')), /^\+OK/);
    await c.cmd('QUIT');
    c = await PopClient.open(f.port);
    await c.line();
    assert.equal(
      await c.cmd(`AUTH PLAIN ${b64('other@example.org\0joe@example.org\0secret')}`),
      '-ERR [AUTH] authentication failed',
    );
    assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
    assert.equal(await c.cmd('*'), '-ERR authentication cancelled');
    assert.equal(await c.cmd('AUTH CRAM-MD5'), '-ERR unsupported SASL mechanism');
    await c.cmd('QUIT');
    assert.ok(f.auth.logins.includes('joe@example.org'), 'recordLogin called');
  });

  void it('Maildir++ maildirsize gets "-bytes -count" for the deletions', async () => {
    writeFileSync(join(f.maildir, 'maildirsize'), '1000000S,100C\n0 0\n');
    putMessage(f.maildir, 'Subject: q\n\n12345\n'); // 18 bytes on disk
    putMessage(f.maildir, 'y\n', { name: '1700000002.x,S=2', cur: true });
    const c = await loggedIn(f);
    await c.cmd('DELE 1');
    await c.cmd('DELE 2');
    assert.match(await c.cmd('QUIT'), /^\+OK .*2 messages deleted/);
    assert.equal(readFileSync(join(f.maildir, 'maildirsize'), 'utf8'), '1000000S,100C\n0 0\n-20 -2\n');
    rmSync(join(f.maildir, 'maildirsize'));
  });

  void it('a message too big to hold is streamed: RETR of 8 MB arrives whole and byte-exact', async () => {
    const line = `${'a'.repeat(99)}\n`;
    const big = Buffer.from(`Subject: big\n\n${line.repeat(80_000)}.\n`);
    putMessage(f.maildir, big);
    const c = await loggedIn(f);
    const size = Number(/^\+OK 1 (\d+)$/.exec(await c.cmd('STAT'))?.[1]);
    assert.equal(size, big.length + 80_000 + 3);
    assert.equal(await c.cmd('RETR 1'), `+OK ${size} octets`);
    const raw = await c.rawBody();
    assert.equal(raw.length, size + 1, 'one stuffed dot');
    assert.ok(raw.subarray(-5).equals(Buffer.from('a\r\n..')) || raw.subarray(-4).toString() === '..\r\n');
    await c.cmd('DELE 1');
    await c.cmd('QUIT');
  });
});

void describe('pop3d policy', () => {
  void it("issue 12: plaintext logins need TLS, loopback included, unless the listener or the client's rule allows them", async () => {
    const { isLoopback } = await import('./index.js');
    assert.deepEqual(['127.0.0.1', '::ffff:127.0.0.5', '::1', '192.0.2.1'].map(isLoopback), [true, true, true, false]);
    // tests connect from 127.0.0.1: without a rule that is refused like any other address
    const cases: Array<[string, Partial<Pop3ServerOptions>, boolean]> = [
      ['no rule', { clientRules: () => ({}) }, false],
      ['plaintext=allow', { clientRules: () => ({}), allowPlaintext: true }, true],
      ['QUAIL_CLEARAUTH', { clientRules: (ip) => ({ clearAuth: ip === '127.0.0.1' }) }, true],
    ];
    for (const [what, opts, allowed] of cases) {
      const f = await fixture(opts);
      try {
        const c = await PopClient.open(f.port);
        await c.line();
        await c.cmd('CAPA');
        assert.equal((await c.body()).includes('USER'), allowed, what);
        const user = await c.cmd('USER joe@example.org');
        const plain = await c.cmd(`AUTH PLAIN ${Buffer.from('\0joe@example.org\0secret').toString('base64')}`);
        if (allowed) {
          assert.equal(user, '+OK send PASS', what);
          assert.match(plain, /^\+OK 0 messages/, what);
        } else {
          assert.equal(user, '-ERR plaintext logins need an encrypted connection: use STLS first', what);
          assert.equal(plain, user, what);
        }
        await c.cmd('QUIT');
      } finally {
        await f.server.close();
        rmSync(f.dir, { recursive: true, force: true });
      }
    }
  });

  void it('issue 12: client rules per connection: deny, the default domain for bare logins, unreadable rules', async () => {
    let rules: () => Pop3ClientRules = () => ({ deny: true });
    const f = await fixture({ clientRules: () => rules() });
    try {
      const denied = await PopClient.open(f.port);
      assert.equal(await denied.line(), '-ERR this host may not use this server');
      await denied.closed();
      rules = () => ({ clearAuth: true, defaultDomain: 'Example.ORG' });
      const c = await PopClient.open(f.port);
      await c.line();
      await c.cmd('USER joe');
      assert.match(await c.cmd('PASS secret'), /^\+OK 0 messages/);
      await c.cmd('QUIT');
      assert.equal(f.auth.calls.at(-1)?.login, 'joe@example.org');
      rules = () => {
        throw new Error('EACCES control/tcp.pop3');
      };
      const broken = await PopClient.open(f.port);
      assert.equal(await broken.line(), '-ERR [SYS/TEMP] unable to read controls, try again later');
      await broken.closed();
      assert.ok(f.events.some((e) => e.name === 'pop3.error' && String(e.fields['error']).includes('EACCES')));
    } finally {
      await f.server.close();
      rmSync(f.dir, { recursive: true, force: true });
    }
  });

  void it('limits connections per address', async () => {
    const f = await fixture({ maxPerIp: 2 });
    try {
      const a = await PopClient.open(f.port);
      const b = await PopClient.open(f.port);
      assert.match((await a.line()) ?? '', /^\+OK/);
      assert.match((await b.line()) ?? '', /^\+OK/);
      const c = await PopClient.open(f.port);
      assert.equal(await c.line(), '-ERR [SYS/TEMP] too many connections, try again later');
      await c.closed();
      a.destroy();
      b.destroy();
    } finally {
      await f.server.close();
      rmSync(f.dir, { recursive: true, force: true });
    }
  });

  void it(
    'a client that stops reading keeps every queued message whole while another session retrieves (the small-message buffer is never reused while a socket holds it)',
    { timeout: 60_000 },
    async () => {
      const f = await fixture();
      try {
        // more than loopback's socket buffers hold, in messages small enough for the in-memory path (64 KiB)
        const N = 400;
        const message = (tag: string, i: number): string =>
          `Subject: ${tag}${i}\n\n${`${tag}${i} ${'x'.repeat(70)}\n`.repeat(600)}`;
        const wire = (m: string): string => m.replace(/\n/g, '\r\n');
        const expected = new Map<string, string>();
        for (let i = 0; i < N; i++) {
          const m = message('a', i);
          putMessage(f.maildir, m);
          expected.set(`a${i}`, wire(m));
        }
        const other = makeMaildir(join(f.dir, 'other', 'Maildir'));
        for (let i = 0; i < 40; i++) putMessage(other, message('b', i));
        writeFileSync(
          join(f.dir, 'users'),
          `${readFileSync(join(f.dir, 'users'), 'latin1')}ann@example.org secret ${other}\n`,
        );

        const a = await loggedIn(f);
        const chunks: Buffer[] = [];
        a.socket.removeAllListeners('data');
        a.socket.on('data', (d: Buffer) => chunks.push(d));
        a.socket.pause(); // the client reads nothing: its RETRs queue up in the kernel and then in the server
        a.write(`${Array.from({ length: N }, (_, i) => `RETR ${i + 1}\r\n`).join('')}QUIT\r\n`);
        await new Promise((r) => setTimeout(r, 500));

        const b = await loggedIn(f, 'ann@example.org');
        for (let i = 1; i <= 40; i++) {
          assert.match(await b.cmd(`RETR ${i}`), /^\+OK \d+ octets$/);
          const got = (await b.rawBody()).toString('latin1');
          const tag = /^Subject: (b\d+)\r\n/.exec(got)?.[1] ?? '?';
          assert.equal(got, wire(message('b', Number(tag.slice(1)))), `ann's RETR ${i}`);
        }
        await b.cmd('QUIT');

        const closed = new Promise((r) => a.socket.once('close', r));
        a.socket.resume();
        await closed;
        const all = Buffer.concat(chunks).toString('latin1');
        const answers = all.split(/\r\n\.\r\n/);
        assert.match(answers.pop() ?? '', /^\+OK/, 'QUIT answered after the last message');
        assert.equal(answers.length, N);
        for (const [i, answer] of answers.entries()) {
          const m = /^\+OK (\d+) octets\r\n(Subject: (a\d+)\r\n[^]*)$/.exec(answer);
          assert.ok(m, `RETR ${i + 1} is an answer: ${answer.slice(0, 80)}`);
          assert.equal(`${m[2]}\r\n`, expected.get(m[3] ?? ''), `RETR ${i + 1} (${m[3]}) arrived whole and unmixed`);
          assert.equal(Number(m[1]), m[2]?.length !== undefined ? m[2].length + 2 : -1, `RETR ${i + 1}: its octets`);
        }
      } finally {
        await f.server.close();
        rmSync(f.dir, { recursive: true, force: true });
      }
    },
  );

  void it('an idle session is closed after the timeout and deletes nothing', async () => {
    const f = await fixture({ idleTimeoutMs: 200 });
    try {
      putMessage(f.maildir, 'x\n');
      const c = await loggedIn(f);
      await c.cmd('DELE 1');
      assert.equal(await c.line(), '-ERR autologout: idle for too long');
      await c.closed();
      assert.equal(readdirSync(join(f.maildir, 'cur')).length, 1);
    } finally {
      await f.server.close();
      rmSync(f.dir, { recursive: true, force: true });
    }
  });

  void it(
    'a TLS handshake that never comes (after STLS, on the implicit-TLS port, cut halfway) ends at the idle timeout',
    { timeout: 30_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'quail-pop3tls-'));
      const gen = spawnSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
          '-subj',
          '/CN=localhost',
          '-days',
          '2',
        ],
        { encoding: 'utf8' },
      );
      assert.equal(gen.status, 0, gen.stderr);
      const pem = readFileSync(join(dir, 'key.pem'), 'utf8') + readFileSync(join(dir, 'cert.pem'), 'utf8');
      const f = await fixture({ idleTimeoutMs: 300, tls: { key: pem, cert: pem } });
      const implicit = createPop3Server({
        authenticator: f.auth,
        tls: { key: pem, cert: pem },
        implicitTls: true,
        idleTimeoutMs: 300,
      });
      const implicitPort = (await implicit.listen(0, '127.0.0.1')).port;
      const gone = (s: Socket): Promise<boolean> =>
        Promise.race([
          new Promise<boolean>((r) => s.once('close', () => r(true))),
          new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
        ]);
      try {
        const c = await PopClient.open(f.port);
        await c.line();
        assert.equal(await c.cmd('STLS'), '+OK begin TLS negotiation');
        assert.equal(await gone(c.socket), true, 'STLS then silence: the session waits for a handshake for good');
        for (const bytes of [Buffer.alloc(0), Buffer.from([0x16, 0x03, 0x01, 0x01, 0x00, 0x01])]) {
          const s = connect({ host: '127.0.0.1', port: implicitPort });
          s.on('error', () => undefined);
          s.write(bytes);
          assert.equal(
            await gone(s),
            true,
            `implicit TLS, ${bytes.length} bytes then silence: the session waits for good`,
          );
        }
        assert.equal(implicit.connections, 0);
      } finally {
        await implicit.close();
        await f.server.close();
        rmSync(f.dir, { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  void it('an unreadable cur/ is [SYS/TEMP] too (permissions; skipped when root can read anyway)', async (t) => {
    const f = await fixture();
    try {
      chmodSync(join(f.maildir, 'cur'), 0o000);
      if (process.getuid?.() === 0) {
        // root ignores modes; make cur/ disappear instead, which takes the same path
        rmSync(join(f.maildir, 'cur'), { recursive: true });
        t.diagnostic('running as root: cur/ removed instead of chmod 000');
      }
      const c = await PopClient.open(f.port);
      await c.line();
      await c.cmd('USER joe@example.org');
      assert.equal(await c.cmd('PASS secret'), '-ERR [SYS/TEMP] mailbox is unavailable, try again later');
      assert.ok(existsSync(f.maildir));
      await c.cmd('QUIT');
    } finally {
      await f.server.close();
      rmSync(f.dir, { recursive: true, force: true });
    }
  });
});
