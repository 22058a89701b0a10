// Remote delivery against real SMTP servers on 127.0.0.x: quail's own receiver (STARTTLS), scripted failures, smtp-sink.
// tier: system (needs openssl, postfix, smtp-sink)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openQueue, type NewMessage } from '../queue/index.js';
import { loadTlsContext, SmtpListener } from '../smtpd/index.js';
import { deliverRemote, RemoteEngine, Tcpto, tcptoPath, type RemoteJob } from './index.js';
import { startDns, type DnsName } from '../../test/support/testdns.js';
import { testSmtp, testWorld, type TestSmtp } from '../../test/support/testsmtp.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'quail-remote-smtp-'));

const world = (files: Record<string, string>): ReturnType<typeof testWorld> => testWorld(files);

/** A self-signed certificate for `name` (key + certificate in one PEM, as servercert.pem). */
function selfSigned(dir: string, name: string, file: string): string {
  const pem = join(dir, `${file}.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      pem,
      '-out',
      `${pem}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=DNS:${name}`,
    ],
    { stdio: 'ignore' },
  );
  writeFileSync(pem, readFileSync(pem, 'utf8') + readFileSync(`${pem}.crt`, 'utf8'));
  return pem;
}

/** A scripted server: RCPT to a local part starting `r5` gets 550, `r4` 451; PIPELINING and SIZE offered. */
const scripted = (host: string, mode: 'normal' | 'drop' | 'silent', port = 0): Promise<TestSmtp> =>
  testSmtp(host, {
    mode,
    port,
    ehlo: ['PIPELINING', 'SIZE 100000'],
    rcpt: (addr) =>
      addr.startsWith('r5')
        ? `550 5.1.1 <${addr}>: no such user`
        : addr.startsWith('r4')
          ? `451 4.3.0 <${addr}>: try again in a moment`
          : undefined,
  });
const delivered = (s: TestSmtp): readonly (readonly string[])[] => s.messages.map((m) => m.recipients);

const jobsFor = (msg: string, rcpts: string[]): RemoteJob[] =>
  rcpts.map((recipient) => ({ recipient, sender: 'from@relay.test', messagePath: msg }));

void test("to quail's own receiver by MX with STARTTLS (verified), three recipients in one transaction, two messages on one connection", async () => {
  const certDir = tmp();
  const good = selfSigned(certDir, 'mx1.dest.test', 'good');
  const other = selfSigned(certDir, 'mx1.dest.test', 'other'); // same name, another key: not trusted by `good`
  // The receiver: quail's SmtpListener on 127.0.0.2 with a real queue behind it.
  const rx = world({ me: 'mx1.dest.test\n', rcpthosts: 'dest.test\n', 'servercert.pem': readFileSync(good, 'utf8') });
  const q = await openQueue(rx.root);
  const injected: Array<{ recipients: readonly string[]; data: string }> = [];
  const sessions: number[] = [];
  const listener = new SmtpListener(
    { host: '127.0.0.2', port: 0, kind: 'smtp', options: {} },
    {
      controlFor: rx.control,
      tls: () => loadTlsContext(rx.control()),
      queue: {
        inject: async (m: NewMessage) => {
          const data = Buffer.isBuffer(m.data) ? m.data : Buffer.concat((await m.data.toArray()) as Buffer[]);
          injected.push({ recipients: m.recipients, data: data.toString('latin1') });
          return q.inject({ ...m, data });
        },
      },
      onSession: (s) => sessions.push(s.messages),
    },
  );
  const addr = await listener.listen();
  const dns = await startDns(
    new Map<string, DnsName>([
      ['dest.test', { mx: [{ pref: 10, exchange: 'mx1.dest.test' }] }],
      ['mx1.dest.test', { a: ['127.0.0.2'] }],
    ]),
  );
  const tx = world({ dnsservers: `127.0.0.1:${dns.port}\n`, tlsdestinations: `dest.test:${good}\n` });
  const engine = new RemoteEngine({ root: tx.root, control: tx.control, mxPort: addr.port, idleMs: 60_000 });
  const r1 = await engine.deliverMany(jobsFor(tx.msg, ['a@dest.test', 'b@dest.test', 'c@dest.test']));
  for (const r of r1) assert.equal(r.result, 'success', r.report);
  assert.match(r1[0]?.report ?? '', /^127\.0\.0\.2 accepted message\.\nRemote host said: 250 2\.0\.0 ok \d+ qp /);
  const r2 = await engine.deliver({ recipient: 'd@dest.test', sender: 'other@relay.test', messagePath: tx.msg });
  assert.equal(r2.result, 'success', r2.report);
  engine.close();
  await listener.close(2000);
  assert.deepEqual(
    injected.map((i) => i.recipients),
    [['a@dest.test', 'b@dest.test', 'c@dest.test'], ['d@dest.test']],
  );
  assert.match(injected[0]?.data ?? '', /with ESMTPS/, 'the message went over TLS');
  assert.deepEqual(sessions, [2], 'one connection carried both messages');
  // Required and verified against a CA that did not sign the server's certificate: TLS failure, temporary.
  const bad = world({ dnsservers: `127.0.0.1:${dns.port}\n`, tlsdestinations: `.test:${other}\n` });
  const again = new SmtpListener(
    { host: '127.0.0.2', port: addr.port, kind: 'smtp', options: {} },
    {
      controlFor: rx.control,
      tls: () => loadTlsContext(rx.control()),
      queue: q,
    },
  );
  await again.listen();
  const r3 = await deliverRemote(
    { recipient: 'e@dest.test', sender: 's@relay.test', messagePath: bad.msg },
    { control: bad.control(), mxPort: addr.port },
  );
  assert.equal(r3.result, 'deferral');
  assert.match(r3.report, /^Connected to 127\.0\.0\.2 but the TLS handshake failed: .*\(#4\.7\.5\)\.\n$/);
  // Opportunistic (no tlsdestinations): the same certificate is not checked, the message goes.
  const may = world({ dnsservers: `127.0.0.1:${dns.port}\n` });
  const r4 = await deliverRemote(
    { recipient: 'f@dest.test', sender: 's@relay.test', messagePath: may.msg },
    { control: may.control(), mxPort: addr.port },
  );
  assert.equal(r4.result, 'success', r4.report);
  await again.close(2000);
  q.close();
  await dns.close();
  for (const d of [certDir, rx.root, tx.root, bad.root, may.root]) rmSync(d, { recursive: true });
});

void test('control/replyrules reclassifies a real reply; a broken rules file defers with the line named', async () => {
  const s = await scripted('127.0.0.3', 'normal');
  const w = world({
    smtproutes: `:127.0.0.3:${s.port}\n`,
    replyrules: '5:temporary:mailbox-moving:\\bno such user\\b\n',
  });
  const r = await deliverRemote(
    { recipient: 'r5x@x.test', sender: 'from@relay.test', messagePath: w.msg },
    { control: w.control() },
  );
  assert.equal(r.result, 'deferral');
  assert.equal(
    r.report,
    '127.0.0.3 does not like recipient.\nRemote host said: 550 5.1.1 <r5x@x.test>: no such user\nGiving up on 127.0.0.3.\nClassified temporary (mailbox-moving).\n',
  );
  const bad = world({ smtproutes: `:127.0.0.3:${s.port}\n`, replyrules: '5:temporary:x:(unclosed\n' });
  const rb = await deliverRemote(
    { recipient: 'ok@x.test', sender: 'from@relay.test', messagePath: bad.msg },
    { control: bad.control() },
  );
  assert.equal(rb.result, 'deferral');
  assert.match(rb.report, /^Unable to read control files\. control\/replyrules line 1: bad pattern: .*\(#4\.3\.0\)\n$/);
  assert.deepEqual(delivered(s), [], 'nothing was sent while the rules file is broken');
  rmSync(w.root, { recursive: true });
  rmSync(bad.root, { recursive: true });
});

void test('per-recipient 5xx and 4xx in one pipelined transaction; the others are delivered', async () => {
  const s = await scripted('127.0.0.3', 'normal');
  const w = world({ smtproutes: `:127.0.0.3:${s.port}\n` });
  const engine = new RemoteEngine({ root: w.root, control: w.control });
  const rs = await engine.deliverMany(jobsFor(w.msg, ['ok1@x.test', 'r5x@x.test', 'r4x@x.test', 'ok2@x.test']));
  engine.close();
  assert.deepEqual(
    rs.map((r) => r.result),
    ['success', 'failure', 'deferral', 'success'],
  );
  assert.equal(
    rs[1]?.report,
    '127.0.0.3 does not like recipient.\nRemote host said: 550 5.1.1 <r5x@x.test>: no such user\nGiving up on 127.0.0.3.\n',
  );
  assert.equal(
    rs[2]?.report,
    '127.0.0.3 does not like recipient.\nRemote host said: 451 4.3.0 <r4x@x.test>: try again in a moment\nGiving up on 127.0.0.3.\n',
  );
  assert.equal(rs[0]?.report, '127.0.0.3 accepted message.\nRemote host said: 250 ok queued\n');
  assert.deepEqual(delivered(s), [['ok1@x.test', 'ok2@x.test']]);
  assert.equal(s.connections.length, 1);
  assert.ok(
    s.lines.some((l) => /^MAIL FROM:<from@relay\.test> SIZE=\d+$/.test(l)),
    'SIZE declared',
  );
  s.server.close();
  rmSync(w.root, { recursive: true });
});

void test('a server that drops the connection after DATA: deferral (retried, never lost or bounced)', async () => {
  const s = await scripted('127.0.0.3', 'drop');
  const w = world({ smtproutes: `:127.0.0.3:${s.port}\n` });
  const r = await deliverRemote(
    { recipient: 'u@x.test', sender: 's@relay.test', messagePath: w.msg },
    { control: w.control() },
  );
  assert.deepEqual(r, {
    result: 'deferral',
    report: 'Connected to 127.0.0.3 but connection died. Possible duplicate! (#4.4.2)\n',
  });
  s.server.close();
  rmSync(w.root, { recursive: true });
});

void test('a server that never answers: the timeout is a deferral', async () => {
  const s = await scripted('127.0.0.3', 'silent');
  const w = world({ smtproutes: `:127.0.0.3:${s.port}\n`, timeoutremote: '1\n' });
  const r = await deliverRemote(
    { recipient: 'u@x.test', sender: 's@relay.test', messagePath: w.msg },
    { control: w.control() },
  );
  assert.deepEqual(r, {
    result: 'deferral',
    report: 'Connected to 127.0.0.3 but connection died. (#4.4.2)\n',
  });
  s.server.close();
  rmSync(w.root, { recursive: true });
});

void test('refused connection: next MX; a remembered timeout is skipped until `quail remote tcpok`', async () => {
  const second = await scripted('127.0.0.5', 'normal');
  const port = second.port; // 127.0.0.4 has nothing on this port: refused
  const dns = await startDns(
    new Map<string, DnsName>([
      [
        'two.test',
        {
          mx: [
            { pref: 10, exchange: 'first.two.test' },
            { pref: 20, exchange: 'second.two.test' },
          ],
        },
      ],
      ['first.two.test', { a: ['127.0.0.4'] }],
      ['second.two.test', { a: ['127.0.0.5'] }],
    ]),
  );
  const w = world({ dnsservers: `127.0.0.1:${dns.port}\n` });
  const r = await deliverRemote(
    { recipient: 'u@two.test', sender: 's@relay.test', messagePath: w.msg },
    { control: w.control(), mxPort: port },
  );
  assert.equal(r.report, '127.0.0.5 accepted message.\nRemote host said: 250 ok queued\n');
  // Now the primary listens, but is remembered as timing out twice: skipped.
  const first = await scripted('127.0.0.4', 'normal', port);
  const tcpto = new Tcpto(tcptoPath(w.root));
  tcpto.record('127.0.0.4', true);
  tcpto.record('127.0.0.4', true);
  const engine = new RemoteEngine({ root: w.root, control: w.control, mxPort: port, idleMs: 10 });
  assert.equal(
    (await engine.deliver({ recipient: 'v@two.test', sender: 's@relay.test', messagePath: w.msg })).result,
    'success',
  );
  assert.equal(first.connections.length, 0, 'skipped while remembered');
  const cli = join(import.meta.dirname, '..', 'cli', 'main.js');
  assert.equal(
    execFileSync(process.execPath, [cli, 'remote', 'tcpok', '--root', w.root], { encoding: 'utf8' }),
    'quail remote tcpok: forgot 1 address\n',
  );
  const r2 = await engine.deliver({ recipient: 'x@two.test', sender: 's@relay.test', messagePath: w.msg });
  assert.equal(r2.report, '127.0.0.4 accepted message.\nRemote host said: 250 ok queued\n');
  engine.close();
  first.server.close();
  second.server.close();
  await dns.close();
  rmSync(w.root, { recursive: true });
});

void test(
  "Postfix's smtp-sink as the remote server",
  {
    skip:
      !existsSync('/usr/sbin/smtp-sink') &&
      process.env['QUAIL_REQUIRE_TOOLS'] !== '1' &&
      'smtp-sink not installed (apt-get install postfix)',
  },
  async () => {
    const probe = await scripted('127.0.0.6', 'normal');
    const port = probe.port;
    await new Promise<void>((resolve) => probe.server.close(() => resolve()));
    const sink = spawn(
      '/usr/sbin/smtp-sink',
      [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), '-c', `127.0.0.6:${port}`, '100'],
      { stdio: 'ignore' },
    );
    try {
      const w = world({ smtproutes: `:127.0.0.6:${port}\n` });
      let rs: Array<{ result: string; report: string }> = [];
      for (let i = 0; i < 50; i++) {
        rs = await new RemoteEngine({ root: w.root, control: w.control }).deliverMany(
          jobsFor(w.msg, ['a@x.test', 'b@x.test']),
        );
        if (rs[0]?.result === 'success') break;
        await new Promise((resolve) => setTimeout(resolve, 100)); // smtp-sink starting
      }
      assert.deepEqual(
        rs.map((r) => r.result),
        ['success', 'success'],
        rs[0]?.report,
      );
      assert.match(rs[0]?.report ?? '', /^127\.0\.0\.6 accepted message\.\nRemote host said: 250 2\.0\.0 Ok/);
      rmSync(w.root, { recursive: true });
    } finally {
      sink.kill();
    }
  },
);
