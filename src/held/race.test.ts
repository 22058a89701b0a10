// Held domains made by `quail held add`, pushed by quail start: ETRN with fetchmail; several pushes of one domain at
// once (two `quail held flush` and a cron-style `quail maildirsmtp` without setlock) deliver each message once;
// kill -9 of the pushing process (the send child) in the middle of a push loses nothing.
// tier: system (needs quail start, swaks, fetchmail, Postfix's smtp-sink)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchmail, runAsync } from '../../test/support/fetchmail.js';
import { testSmtp } from '../../test/support/testsmtp.js';
import { waitUntil } from '../../test/support/wait.js';
import {
  freePort,
  listenerPort,
  MAIN,
  procUids,
  quail,
  setupRoot,
  socketHolders,
  startProcess,
  swaks,
  waitFor,
} from '../../test/support/start.js';

const DOMAIN = 'some.example.com';

/** A root with DOMAIN held by `quail held add` for `host` (heldinterval 3600: no timed push explains anything). */
function heldRoot(host: string, more: readonly string[] = []): { root: string; box: () => string[] } {
  const root = mkdtempSync(join(tmpdir(), 'quail-held-race-'));
  setupRoot(root, 'isp.test', []);
  quail(['held', 'add', DOMAIN, '--root', root, '--host', host, ...more]);
  writeFileSync(join(root, 'control', 'heldinterval'), '3600\n');
  const maildir = join(root, 'held', DOMAIN, 'Maildir');
  return { root, box: () => [...readdirSync(join(maildir, 'new')), ...readdirSync(join(maildir, 'cur'))] };
}

/** Mail for DOMAIN from 127.0.0.2 (a real client), then wait until it is all held. */
async function fill(root: string, box: () => string[], who: readonly string[], log: () => string): Promise<void> {
  const smtp = listenerPort(root, 'smtp');
  for (const w of who) {
    const r = swaks(smtp, ['--local-interface', '127.0.0.2', '--to', `${w}@${DOMAIN}`]);
    assert.equal(r.status, 0, r.out);
  }
  await waitFor(() => box().length === who.length, 20_000, log);
}

void test('ETRN with fetchmail for a domain made by quail held add --etrn: the held mail arrives once', async () => {
  const customer = await testSmtp('127.0.0.1', { ehlo: ['PIPELINING'] });
  const { root, box } = heldRoot(`127.0.0.1:${customer.port}`, ['--etrn']);
  const q = await startProcess(root);
  try {
    await fill(root, box, ['joe', 'ann'], q.log);
    const smtp = listenerPort(root, 'smtp');
    const f = await fetchmail([
      ...['-v', '--nosyslog', '-f', '/dev/null', '--nodetach', '--protocol', 'ETRN'],
      ...['--fetchdomains', DOMAIN, '-P', String(smtp), '127.0.0.1'],
    ]);
    assert.match(f.out, /253 .*2 pending messages for node some\.example\.com started/, f.out);
    await waitFor(() => /held\.push domain=some\.example\.com result=done sent=2/.test(q.log()), 20_000, q.log);
    assert.deepEqual(box(), []);
    assert.deepEqual(customer.messages.flatMap((m) => m.recipients).sort(), [`ann@${DOMAIN}`, `joe@${DOMAIN}`]);
    assert.match(quail(['held', 'show', DOMAIN, '--root', root]), /last push: \S+: 2 sent, 0 bounced, 0 kept/);
  } finally {
    q.killGroup();
    await q.exited;
    await customer.close();
  }
});

/** smtp-sink on 127.0.0.7, one second before each reply to DATA, each transaction dumped to a file of `dir`. */
async function slowSink(): Promise<{ port: number; dir: string; rcpts: () => string[]; stop: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'quail-sink-'));
  chmodSync(dir, 0o777); // smtp-sink writes as nobody
  const port = await freePort();
  const sink = spawn(
    '/usr/sbin/smtp-sink',
    ['-u', 'nobody', '-w', '1', '-d', `${dir}/%H%M%S.`, `127.0.0.7:${port}`, '50'],
    {
      stdio: 'ignore',
    },
  );
  const rcpts = (): string[] =>
    readdirSync(dir).flatMap((f) =>
      [...readFileSync(join(dir, f), 'latin1').matchAll(/^X-Rcpt-Args: <([^>]*)>/gm)].map((m) => m[1] ?? ''),
    );
  return { port, dir, rcpts, stop: () => sink.kill() };
}

void test('pushes of one domain at once (two held flush, and maildirsmtp without setlock) deliver each message once', async () => {
  const sink = await slowSink();
  const { root, box } = heldRoot(`127.0.0.7:${sink.port}`);
  const q = await startProcess(root);
  const who = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8'];
  try {
    await fill(root, box, who, q.log);
    // The same Maildir from three sides at once: quail start's pusher (asked twice) and a cron script that forgot
    // setlock (so only each message's own lock stands between them). The sink takes a second per message.
    const maildir = join(root, 'held', DOMAIN, 'Maildir');
    const [cron, f1, f2] = await Promise.all([
      runAsync(process.execPath, [
        MAIN,
        'maildirsmtp',
        '--root',
        root,
        maildir,
        `${DOMAIN}-`,
        `127.0.0.7:${sink.port}`,
      ]),
      runAsync(process.execPath, [MAIN, 'held', 'flush', DOMAIN, '--root', root]),
      runAsync(process.execPath, [MAIN, 'held', 'flush', DOMAIN, '--root', root]),
    ]);
    assert.match(f1.out + f2.out, /push requested/);
    await waitFor(() => box().length === 0, 60_000, q.log);
    // Everything settled: quail start's pushes said how many they sent (events reach the log in batches).
    const byCron = (cron.out.match(/: sent: /g) ?? []).length;
    const byStart = (): number =>
      [...q.log().matchAll(/held\.push domain=some\.example\.com result=\w+ sent=(\d+)/g)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    await waitFor(
      () => byCron + byStart() === who.length,
      30_000,
      () => `${cron.out}\n${q.log()}`,
    );
    // They did overlap: each side sent some of the messages, and skipped the ones the other was sending.
    assert.ok(byCron > 0 && byStart() > 0, `cron sent ${byCron}, quail start ${byStart()}\n${cron.out}`);
    // The customer got each message once.
    await waitFor(
      () => sink.rcpts().length >= who.length,
      20_000,
      () => sink.rcpts().join(' '),
    );
    assert.deepEqual(
      sink.rcpts().sort(),
      who.map((w) => `${w}@${DOMAIN}`),
      `${cron.out}\n${q.log()}`,
    );
  } finally {
    q.killGroup();
    await q.exited;
    sink.stop();
  }
});

/** An SMTP server that accepts the first message and never answers the final dot of the second. */
async function stallingServer(port: number): Promise<{ accepted: string[]; clients: Socket[]; close: () => void }> {
  const accepted: string[] = [];
  const clients: Socket[] = [];
  const server = createServer((s) => {
    clients.push(s);
    s.on('error', () => undefined);
    s.write('220 stall ESMTP\r\n');
    let buf = '';
    let inData = false;
    let rcpt = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          buf = buf.slice(end + 5);
          inData = false;
          if (accepted.length === 0) {
            accepted.push(rcpt);
            s.write('250 ok first\r\n');
          } else accepted.push(`(stalled ${rcpt})`); // no answer, ever
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'RCPT') rcpt = /<([^>]*)>/.exec(line)?.[1] ?? '';
        if (verb === 'DATA') {
          inData = true;
          s.write('354 go\r\n');
        } else s.write(verb === 'QUIT' ? '221 bye\r\n' : '250 ok\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    accepted,
    clients,
    close: () => {
      for (const s of clients) s.destroy();
      server.close();
    },
  };
}

/** The processes holding the client end of the connection the server socket `s` accepted (from /proc/net/tcp). */
function clientHolders(s: Socket): number[] {
  const hex = (port: number): string => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === hex(s.remotePort ?? 0) && f[2] === hex(s.localPort ?? 0)) return socketHolders(f[9]);
  }
  return [];
}

void test('kill -9 of quail start’s pushing process in the middle of a push loses nothing', async () => {
  const port = await freePort();
  const { root, box } = heldRoot(`127.0.0.1:${port}`);
  const q = await startProcess(root);
  let customer: Awaited<ReturnType<typeof testSmtp>> | undefined;
  try {
    await fill(root, box, ['a', 'b', 'c'], q.log);
    const stall = await stallingServer(port);
    quail(['held', 'flush', DOMAIN, '--root', root]);
    await waitFor(() => stall.accepted.length === 2, 20_000, q.log); // one sent, the next one's dot unanswered
    const [pusher, ...others] = stall.clients.flatMap(clientHolders);
    assert.ok(pusher !== undefined && others.length === 0, `one process pushes: ${String(pusher)} ${others.join(' ')}`);
    assert.notEqual(procUids(pusher)[0], 0, 'the push runs unprivileged (the send child)');
    // The lock holder, as quail held list and quail status name it.
    assert.match(quail(['held', 'list', '--root', root]), new RegExp(` lock held by ${pusher} \\(`));
    assert.match(
      quail(['status', '--root', root]),
      new RegExp(`held: some\\.example\\.com .*; lock held by ${pusher} \\(`),
    );
    process.kill(pusher, 'SIGKILL');
    stall.close();
    const sent = stall.accepted[0] ?? '';
    // The one the customer said 250 to is gone; the one in flight and the one not yet sent are still held.
    assert.equal(box().length, 2);
    // quail start brings the send child back; a flush (lossy while it is away, so asked again) pushes the rest.
    customer = await testSmtp('127.0.0.1', { port });
    const c = customer;
    const deadline = Date.now() + 60_000;
    while (c.messages.length < 2 && Date.now() < deadline) {
      quail(['held', 'flush', DOMAIN, '--root', root]);
      await waitUntil(() => c.messages.length >= 2, 2000);
    }
    await waitFor(() => box().length === 0, 20_000, q.log);
    const all = [sent, ...c.messages.flatMap((m) => m.recipients)].sort();
    assert.deepEqual(all, [`a@${DOMAIN}`, `b@${DOMAIN}`, `c@${DOMAIN}`], q.log());
  } finally {
    q.killGroup();
    await q.exited;
    await customer?.close();
  }
});
