// End to end through a running `quail start`: SMTP in → queue → scheduler → RemoteEngine → a remote server found by MX.
// tier: system (needs quail start)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { QueuedMessage } from '../queue/index.js';
import { startDns, type DnsName } from '../../test/support/testdns.js';
import { harness, type Harness } from '../../test/support/smtpd.js';
import { testSmtp, type TestSmtp } from '../../test/support/testsmtp.js';
import {
  listenerPort,
  MAIN,
  queuedCount,
  quail,
  startProcess,
  swaks,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

/**
 * Stands for this machine on the MX port: 127.0.0.1 is in quail's own addresses, so a connection here is quail
 * delivering to itself (a loop). It answers 421 and hangs up, and counts.
 */
async function tripwire(): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    s.on('error', () => undefined);
    s.end('421 tripwire: quail connected to its own address\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => n };
}

/** quail's own SmtpListener (src/smtpd's harness) with a self-signed certificate, so STARTTLS is offered. */
const receiver = (host: string, port: number, me: string, domain: string): Promise<Harness> =>
  harness({ host, port, tls: true, control: { me: `${me}\n`, rcpthosts: `${domain}\n` } });

const queueList = (root: string): QueuedMessage[] =>
  quail(['queue', 'list', '--json', '--root', root])
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as QueuedMessage);

void test('QUAIL_MX_PORT that is not a port: quail start refuses with a clear error (exit 100)', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-mxport-'));
  try {
    quail(['init', '--root', root, '--me', 'relay.test']);
    for (const bad of ['smtp', '0', '65536']) {
      const r = spawnSync(
        process.execPath,
        [MAIN, 'start', '--root', root, '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0'],
        {
          encoding: 'utf8',
          env: { ...process.env, QUAIL_MX_PORT: bad },
          timeout: 30_000,
        },
      );
      assert.equal(r.status, 100, `QUAIL_MX_PORT=${bad}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`QUAIL_MX_PORT="${bad}" is not a port \\(1-65535\\)`));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('quail start → MX with STARTTLS, three recipients in one transaction; a backup-MX domain is held until its primary returns', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-remote-e2e-'));
  chmodSync(root, 0o755); // as root, the SMTP child runs as control/quailuser and must reach the mail root
  let self: Awaited<ReturnType<typeof tripwire>> | undefined;
  let dest: Harness | undefined;
  let primary: Harness | undefined;
  let dns: Awaited<ReturnType<typeof startDns>> | undefined;
  let q: QuailProcess | undefined;
  try {
    self = await tripwire();
    const mxPort = self.port; // every MX host listens on this port (QUAIL_MX_PORT); 127.0.0.1 on it is quail itself
    const rx = await receiver('127.0.0.2', mxPort, 'mx.dest.test', 'dest.test');
    dest = rx;
    dns = await startDns(
      new Map<string, DnsName>([
        ['dest.test', { mx: [{ pref: 10, exchange: 'mx.dest.test' }] }],
        ['mx.dest.test', { a: ['127.0.0.2'] }],
        [
          'backup.test',
          {
            mx: [
              { pref: 10, exchange: 'primary.backup.test' },
              { pref: 20, exchange: 'relay.test' },
            ],
          },
        ],
        ['primary.backup.test', { a: ['127.0.0.3'] }],
        ['relay.test', { a: ['127.0.0.1'] }], // quail itself: the backup MX
      ]),
    );
    quail(['init', '--root', root, '--me', 'relay.test']);
    const ctl = (name: string): string => join(root, 'control', name);
    writeFileSync(ctl('dnsservers'), `127.0.0.1:${dns.port}\n`);
    writeFileSync(ctl('tcp.smtp'), '127.0.0.1:allow,RELAYCLIENT=""\n:allow\n');
    writeFileSync(ctl('rcpthosts'), 'backup.test\n', { flag: 'a' }); // we are its backup MX: neither local nor virtual
    q = await startProcess(root, 30_000, { QUAIL_MX_PORT: String(mxPort) });
    const log = q.log;
    assert.match(log(), new RegExp(`quail\\.started [^\\n]*mxport=${mxPort}`));
    const port = listenerPort(root, 'smtp');

    // a. A relay client (127.0.0.1, RELAYCLIENT) sends one message to three recipients at dest.test.
    const sent = swaks(port, [
      '--to',
      'a@dest.test,b@dest.test,c@dest.test',
      '--header',
      'Subject: e2e mx',
      '--body',
      'by MX over TLS',
    ]);
    assert.equal(sent.status, 0, sent.out);
    await waitFor(
      () => rx.queued.length > 0 && queuedCount(root) === 0,
      30_000,
      () => `dest.test got ${rx.queued.length} transaction(s), quail's queue holds ${queuedCount(root)}\n${log()}`,
    );
    assert.deepEqual(
      rx.queued.map((m) => m.recipients),
      [['a@dest.test', 'b@dest.test', 'c@dest.test']],
      'one transaction, all three recipients',
    );
    const m = rx.queued[0];
    assert.equal(m?.sender, 'sender@client.test');
    // The receiver's own Received line comes first: quail's connection from 127.0.0.1, over TLS.
    assert.match(
      m?.data ?? '',
      /^Received: from [^\n]*\(127\.0\.0\.1\)\r?\n {2}by mx\.dest\.test with ESMTPS; /,
      m?.data,
    );
    assert.match(m?.data ?? '', /Subject: e2e mx\r?\n[\s\S]*by MX over TLS/);
    assert.equal(self.connections(), 0);

    // b. An outside client (127.0.0.4, no RELAYCLIENT) may not relay, but backup.test is in rcpthosts.
    const outside = ['--local-interface', '127.0.0.4'];
    assert.match(
      swaks(port, [...outside, '--to', 'x@dest.test', '--quit-after', 'RCPT']).out,
      /553 5\.7\.1 sorry, that domain isn't in my list of allowed rcpthosts/,
    );
    const held = swaks(port, [
      ...outside,
      '--to',
      'u@backup.test',
      '--header',
      'Subject: e2e backup',
      '--body',
      'held for the primary',
    ]);
    assert.equal(held.status, 0, held.out);
    assert.match(held.out, /<- {2}250 2\.0\.0 ok \d+ qp /);
    // The primary (127.0.0.3) is not listening: a deferral, the message stays queued; quail never tries itself.
    await waitFor(
      () => /send\.delivery [^\n]*result=deferral/.test(log()),
      30_000,
      () => `no deferral logged\n${log()}`,
    );
    let rcpt: QueuedMessage['recipients'][number] | undefined;
    await waitFor(
      () => {
        rcpt = queueList(root)[0]?.recipients[0];
        return rcpt?.lastResult === 'deferral';
      },
      30_000,
      () => `no deferral for u@backup.test: ${JSON.stringify(rcpt)}\n${log()}`,
    );
    assert.equal(rcpt?.original, 'u@backup.test');
    assert.equal(rcpt?.channel, 'remote');
    assert.equal(rcpt?.status, 'pending');
    assert.equal(rcpt?.lastReport, "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n");
    assert.equal(queuedCount(root), 1);
    assert.equal(self.connections(), 0, 'quail connected to its own address (the worse MX)');

    // The primary comes back; `quail queue flush` (SIGALRM's job) retries now.
    const p = await receiver('127.0.0.3', mxPort, 'primary.backup.test', 'backup.test');
    primary = p;
    assert.match(quail(['queue', 'flush', '--root', root]), /^flush requested: 1 scheduler\(s\) woken\n$/);
    await waitFor(
      () => p.queued.length > 0 && queuedCount(root) === 0,
      30_000,
      () => `primary got ${p.queued.length}, quail's queue holds ${queuedCount(root)}\n${log()}`,
    );
    assert.deepEqual(
      p.queued.map((x) => x.recipients),
      [['u@backup.test']],
    );
    assert.match(
      p.queued[0]?.data ?? '',
      /^Received: from [^\n]*\(127\.0\.0\.1\)\r?\n {2}by primary\.backup\.test with ESMTPS; [\s\S]*Subject: e2e backup/,
    );
    assert.equal(self.connections(), 0);
    assert.equal(rx.queued.length, 1, 'nothing else reached dest.test');

    q.child.kill('SIGTERM');
    assert.deepEqual(await q.exited, { code: 0, signal: null }, log());
  } finally {
    q?.killGroup();
    await dest?.close();
    await primary?.close();
    self?.server.close();
    await dns?.close();
    rmSync(root, { recursive: true, force: true });
  }
});

void test('a host that accepts and never greets holds its concurrencyremotehost slots, not every concurrencyremote slot: mail to another host goes meanwhile', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-remote-tarpit-'));
  chmodSync(root, 0o755);
  // The tarpit: accepts, never writes a byte; its connections are counted and kept open until the end.
  const held = new Set<Socket>();
  let accepted = 0;
  let closed = 0;
  const tarpit = createServer((s) => {
    accepted++;
    held.add(s);
    s.on('error', () => undefined);
    s.on('close', () => {
      closed++;
      held.delete(s);
    });
  });
  let sink: TestSmtp | undefined;
  let q: QuailProcess | undefined;
  try {
    await new Promise<void>((resolve) => tarpit.listen(0, '127.0.0.1', resolve));
    const tarpitPort = (tarpit.address() as AddressInfo).port;
    const s = await testSmtp('127.0.0.2');
    sink = s;
    quail(['init', '--root', root, '--me', 'relay.test']);
    const ctl = (name: string, text: string): void => writeFileSync(join(root, 'control', name), text);
    ctl('tcp.smtp', '127.0.0.1:allow,RELAYCLIENT=""\n:allow\n');
    ctl('smtproutes', `tarpit.test:127.0.0.1:${tarpitPort}\nsink.test:127.0.0.2:${s.port}\n`);
    ctl('concurrencyremote', '2\n');
    ctl('concurrencyremotehost', '1\n');
    ctl('timeoutremote', '60\n'); // a tarpit's connection lasts this long
    ctl('timeoutconnect', '1\n'); // and a delivery waits this long for one of its connections
    q = await startProcess(root);
    const log = q.log;
    const port = listenerPort(root, 'smtp');
    const send = (to: string): void => {
      const r = swaks(port, ['--to', to, '--header', `Subject: to ${to}`, '--body', 'tarpit test']);
      assert.equal(r.status, 0, r.out);
    };
    // Three messages to the tarpit: the first holds its one connection, the others wait for it (or their turn).
    send('a@tarpit.test');
    await waitFor(
      () => accepted === 1,
      30_000,
      () => `the tarpit got no connection\n${log()}`,
    );
    send('b@tarpit.test');
    send('c@tarpit.test');
    send('d@sink.test');
    // Before the fix the sink's message waited for a global slot until the tarpit's connection timed out (60 s).
    await waitFor(
      () => s.messages.length > 0 || closed > 0,
      120_000,
      () => `neither delivered nor timed out\n${log()}`,
    );
    assert.equal(
      s.messages.length,
      1,
      `sink.test's message was not delivered while the tarpit held its slots\n${log()}`,
    );
    assert.deepEqual(s.messages[0]?.recipients, ['d@sink.test']);
    assert.equal(closed, 0, "the tarpit's connection is still open");
    assert.equal(accepted, 1, 'concurrencyremotehost 1: one connection to the tarpit');
    // The tarpit's other messages are deferred with the reason, and stay queued (not failed, not lost).
    const report =
      'Sorry, too many connections to 127.0.0.1 are busy already (concurrencyremotehost is 1); ' +
      'none became free within timeoutconnect (1 s). (#4.4.5)\n';
    let states: QueuedMessage['recipients'][number][] = [];
    await waitFor(
      () => {
        states = queueList(root).flatMap((m) => m.recipients);
        return states.filter((r) => r.lastResult === 'deferral').length === 2;
      },
      30_000,
      () => `not two deferrals: ${JSON.stringify(states)}\n${log()}`,
    );
    assert.deepEqual(states.map((r) => r.original).sort(), ['a@tarpit.test', 'b@tarpit.test', 'c@tarpit.test']);
    for (const r of states.filter((x) => x.lastResult === 'deferral')) {
      assert.equal(r.status, 'pending');
      assert.equal(r.lastReport, report);
    }
    assert.equal(closed, 0, "the tarpit's connection is still open");
    assert.doesNotMatch(log(), /result=failure/);

    // The tarpit lets go: its delivery in progress is deferred and quail stops cleanly.
    for (const c of held) c.destroy();
    q.child.kill('SIGTERM');
    assert.deepEqual(await q.exited, { code: 0, signal: null }, log());
    assert.equal(queuedCount(root), 3);
  } finally {
    q?.killGroup();
    for (const c of held) c.destroy();
    tarpit.close();
    await sink?.close();
    rmSync(root, { recursive: true, force: true });
  }
});
