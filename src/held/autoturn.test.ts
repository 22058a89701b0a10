// AutoTURN with quail start: a session on port 25 from a held domain's --autoturn network pushes its held mail to
// the domain's host (RELAYHOST) after the session — after QUIT, after a reset, after fetchmail's poll; a session from
// any other address pushes nothing.
// tier: system (needs quail start, swaks, fetchmail, python3)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchmail, runAsync } from '../../test/support/fetchmail.js';
import { testSmtp } from '../../test/support/testsmtp.js';
import { listenerPort, quail, setupRoot, startProcess, swaks, waitFor } from '../../test/support/start.js';

const maildirOf = (root: string, domain: string): string => join(root, 'held', domain, 'Maildir', 'new');

/** A client from `source` that reads the greeting, says EHLO, reads the reply and resets the connection (no QUIT). */
const RESET = `import socket,struct,sys
s=socket.socket()
s.bind((sys.argv[1],0))
s.connect(('127.0.0.1',int(sys.argv[2])))
f=s.makefile('rb')
print(f.readline().decode().strip())
s.sendall(b'EHLO customer.test\\r\\n')
while True:
    l=f.readline().decode()
    print(l.strip())
    if l[3:4]!='-': break
s.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0))
s.close()
`;

void test('AutoTURN: a session from the customer’s network pushes its held mail once; other addresses push nothing', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-autoturn-'));
  setupRoot(root, 'isp.test', []);
  // The customers' own SMTP receiver (one for the three domains), on an address of its own.
  const customer = await testSmtp('127.0.0.3', { ehlo: ['PIPELINING'] });
  const host = ['--host', `127.0.0.3:${customer.port}`];
  // No --etrn: only AutoTURN (or a timed push, which heldinterval 3600 rules out) can push these domains.
  quail(['held', 'add', 'some.example.com', '--root', root, ...host, '--autoturn', '127.0.0.1/32']);
  quail(['held', 'add', 'other.example.com', '--root', root, ...host, '--autoturn', '127.0.0.4/31']);
  quail(['held', 'add', 'third.example.com', '--root', root, ...host, '--autoturn', '127.0.0.1']);
  writeFileSync(join(root, 'control', 'heldinterval'), '3600\n');
  const q = await startProcess(root);
  // Mail is sent from 127.0.0.2, which is in no domain's network: its own sessions trigger nothing.
  const send = (to: string): void => {
    const r = swaks(smtp, ['--local-interface', '127.0.0.2', '--to', to]);
    assert.equal(r.status, 0, r.out);
  };
  const smtp = listenerPort(root, 'smtp');
  const rcpts = (): string[] => customer.messages.flatMap((m) => m.recipients).sort();
  try {
    send('joe@some.example.com');
    send('ann@some.example.com');
    await waitFor(() => readdirSync(maildirOf(root, 'some.example.com')).length === 2, 20_000, q.log);

    // A stranger's session (EHLO, QUIT) while mail waits: it ends (smtp.close) and nothing is pushed.
    // (the deliveries from 127.0.0.2 each closed with messages=1; this session is the only one with none)
    const stranger = swaks(smtp, ['--local-interface', '127.0.0.2', '--quit-after', 'EHLO']);
    assert.equal(stranger.status, 0, stranger.out);
    await waitFor(() => /smtp\.close ip=127\.0\.0\.2 reason=quit messages=0\b/.test(q.log()), 20_000, q.log);

    // The customer's session from 127.0.0.1 (swaks, EHLO then QUIT): after it, the held mail goes to its host.
    const own = swaks(smtp, ['--local-interface', '127.0.0.1', '--quit-after', 'EHLO']);
    assert.equal(own.status, 0, own.out);
    await waitFor(() => /held\.autoturn domain=some\.example\.com ip=127\.0\.0\.1\b/.test(q.log()), 20_000, q.log);
    await waitFor(() => /held\.push domain=some\.example\.com result=done sent=2/.test(q.log()), 20_000, q.log);
    assert.deepEqual(readdirSync(maildirOf(root, 'some.example.com')), []);
    assert.deepEqual(rcpts(), ['ann@some.example.com', 'joe@some.example.com']);
    // The stranger's session was over before the customer's began: had it matched, its event would be in the log.
    assert.doesNotMatch(q.log(), /held\.autoturn [^\n]*ip=127\.0\.0\.2/);
    // Domains with nothing waiting were not pushed, even though 127.0.0.1 is in third.example.com's network too.
    assert.doesNotMatch(q.log(), /held\.(autoturn|push) domain=(third|other)\.example\.com/);

    // A session that is reset after EHLO (no QUIT) from 127.0.0.5, in other.example.com's 127.0.0.4/31.
    send('bob@other.example.com');
    await waitFor(() => readdirSync(maildirOf(root, 'other.example.com')).length === 1, 20_000, q.log);
    const reset = await runAsync('python3', ['-c', RESET, '127.0.0.5', String(smtp)]);
    assert.match(reset.out, /^250[ -]/m, reset.out);
    await waitFor(() => /held\.autoturn domain=other\.example\.com ip=127\.0\.0\.5\b/.test(q.log()), 20_000, q.log);
    await waitFor(() => /held\.push domain=other\.example\.com result=done sent=1/.test(q.log()), 20_000, q.log);
    assert.deepEqual(readdirSync(maildirOf(root, 'other.example.com')), []);

    // The customer's fetchmail, polling from 127.0.0.1 as usual (here ETRN, which this domain does not allow: 459):
    // its session alone is the sign the customer is online.
    send('cat@third.example.com');
    await waitFor(() => readdirSync(maildirOf(root, 'third.example.com')).length === 1, 20_000, q.log);
    const f = await fetchmail([
      '-v',
      '--nosyslog',
      '-f',
      '/dev/null',
      '--nodetach',
      '--protocol',
      'ETRN',
      '--fetchdomains',
      'third.example.com',
      '-P',
      String(smtp),
      '127.0.0.1',
    ]);
    assert.match(f.out, /459 .*not enabled/, f.out);
    await waitFor(() => /held\.autoturn domain=third\.example\.com ip=127\.0\.0\.1\b/.test(q.log()), 20_000, q.log);
    await waitFor(() => /held\.push domain=third\.example\.com result=done sent=1/.test(q.log()), 20_000, q.log);
    assert.deepEqual(readdirSync(maildirOf(root, 'third.example.com')), []);

    // Each message exactly once.
    assert.deepEqual(rcpts(), [
      'ann@some.example.com',
      'bob@other.example.com',
      'cat@third.example.com',
      'joe@some.example.com',
    ]);
    assert.equal((q.log().match(/held\.autoturn /g) ?? []).length, 3, q.log());
  } finally {
    q.killGroup();
    await q.exited;
    await customer.close();
  }
});
