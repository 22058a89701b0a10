// Next hop through a real DNS server on 127.0.0.1 (control/dnsservers): MX order, null MX, implicit MX, backup MX.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Control } from '../control/index.js';
import { deliverRemote, makeResolver, nullMxReport, parseDnsServers, resolveTargets, shuffleEqual } from './index.js';
import { startDns, type DnsName } from '../../test/support/testdns.js';
import { testSmtp, type TestSmtp } from '../../test/support/testsmtp.js';

const ZONE: Array<[string, DnsName]> = [
  [
    'mx.test',
    {
      mx: [
        { pref: 20, exchange: 'b.mx.test' },
        { pref: 10, exchange: 'a.mx.test' },
      ],
    },
  ],
  ['a.mx.test', { a: ['192.0.2.10'], aaaa: ['2001:db8::10'] }],
  ['b.mx.test', { a: ['192.0.2.20'] }],
  ['null.test', { mx: [{ pref: 0, exchange: '' }] }],
  ['nomx.test', { a: ['192.0.2.30'], aaaa: ['2001:db8::30'] }],
  ['broken.test', { servfail: true }],
  ['dangling.test', { mx: [{ pref: 10, exchange: 'gone.test' }] }],
  ['self.test', { mx: [{ pref: 10, exchange: 'me.mx.test' }] }],
  ['me.mx.test', { a: ['127.0.0.1'] }],
  // backup MX: the primary is 127.0.0.2, this machine (127.0.0.1) is the backup at 20, 127.0.0.3 is worse
  [
    'backup.test',
    {
      mx: [
        { pref: 10, exchange: 'primary.test' },
        { pref: 20, exchange: 'me.mx.test' },
        { pref: 30, exchange: 'worse.test' },
      ],
    },
  ],
  ['primary.test', { a: ['127.0.0.2'] }],
  ['worse.test', { a: ['127.0.0.3'] }],
];

function root(files: Record<string, string>): { root: string; control: Control } {
  const r = mkdtempSync(join(tmpdir(), 'quail-nexthop-'));
  mkdirSync(join(r, 'control'));
  for (const [k, v] of Object.entries(files)) writeFileSync(join(r, 'control', k), v);
  return { root: r, control: new Control(r) };
}

void test('dnsservers parser: golden table', () => {
  assert.deepEqual(parseDnsServers(['127.0.0.1', '127.0.0.1:5353', '[::1]:53']), [
    '127.0.0.1',
    '127.0.0.1:5353',
    '[::1]:53',
  ]);
  for (const bad of ['localhost', '127.0.0.1:99999', '1.2.3', '[::1', ''])
    assert.throws(() => parseDnsServers([bad]), /dnsservers/);
});

void test('equal preferences are shuffled, preferences kept in order', () => {
  const items = [
    { pref: 10, n: 'a' },
    { pref: 5, n: 'x' },
    { pref: 10, n: 'b' },
    { pref: 10, n: 'c' },
    { pref: 20, n: 'z' },
  ];
  const seen = new Set<string>();
  for (const r of [0, 0.34, 0.67, 0.99]) {
    const out = shuffleEqual(items, () => r);
    assert.equal(out[0]?.n, 'x');
    assert.equal(out[4]?.n, 'z');
    assert.deepEqual(
      out
        .slice(1, 4)
        .map((o) => o.n)
        .sort(),
      ['a', 'b', 'c'],
    );
    seen.add(
      out
        .slice(1, 4)
        .map((o) => o.n)
        .join(''),
    );
  }
  assert.ok(seen.size > 1, 'different random numbers give different orders');
});

void test('MX, null MX, implicit MX, NXDOMAIN, SERVFAIL through the DNS server named in control/dnsservers', async () => {
  const dns = await startDns(new Map(ZONE));
  const w = root({ me: 'me.test\n', dnsservers: `127.0.0.1:${dns.port}\n` });
  const resolver = makeResolver(w.control);
  const ipme = new Set(['127.0.0.1', '0.0.0.0']);
  const mx = await resolveTargets('mx.test', { kind: 'mx' }, resolver, ipme);
  assert.deepEqual(mx, {
    kind: 'ok',
    targets: [
      { ip: '192.0.2.10', pref: 10, name: 'a.mx.test' },
      { ip: '2001:db8::10', pref: 10, name: 'a.mx.test' },
      { ip: '192.0.2.20', pref: 20, name: 'b.mx.test' },
    ],
  });
  assert.deepEqual(await resolveTargets('null.test', { kind: 'mx' }, resolver, ipme), {
    kind: 'permanent',
    report: nullMxReport('null.test'),
  });
  assert.deepEqual(await resolveTargets('nomx.test', { kind: 'mx' }, resolver, ipme), {
    kind: 'ok',
    targets: [
      { ip: '192.0.2.30', pref: 0, name: 'nomx.test' },
      { ip: '2001:db8::30', pref: 0, name: 'nomx.test' },
    ],
  });
  assert.deepEqual(await resolveTargets('nowhere.test', { kind: 'mx' }, resolver, ipme), {
    kind: 'permanent',
    report: "Sorry, I couldn't find any host named nowhere.test. (#5.1.2)\n",
  });
  assert.deepEqual(await resolveTargets('broken.test', { kind: 'mx' }, resolver, ipme), {
    kind: 'temporary',
    report: "Sorry, I couldn't find any host by that name. (#4.1.2)\n",
  });
  assert.equal((await resolveTargets('dangling.test', { kind: 'mx' }, resolver, ipme)).kind, 'permanent');
  assert.equal(
    (await resolveTargets('self.test', { kind: 'mx' }, resolver, ipme)).kind,
    'permanent',
    'E.4: best MX is me',
  );
  // A relay name is resolved through the same server (A/AAAA, no MX).
  assert.deepEqual(
    await resolveTargets('mx.test', { kind: 'relay', relay: 'b.mx.test', port: 2525, pattern: '' }, resolver, ipme),
    {
      kind: 'ok',
      targets: [{ ip: '192.0.2.20', pref: 0, name: 'b.mx.test' }],
    },
  );
  // A null MX reaches the scheduler as a permanent failure with its text.
  const msg = join(w.root, 'msg');
  writeFileSync(msg, 'Subject: x\n\nbody\n');
  assert.deepEqual(
    await deliverRemote({ recipient: 'u@null.test', sender: 's@x.test', messagePath: msg }, { control: w.control }),
    {
      result: 'failure',
      report: nullMxReport('null.test'),
    },
  );
  await dns.close();
  rmSync(w.root, { recursive: true });
});

/** A server that answers 220/250/354 ("250 queued" after the dot) and counts connections. */
const counter = (host: string, port = 0): Promise<TestSmtp> => testSmtp(host, { port, replies: { end: '250 queued' } });

void test('backup MX: delivers only to the better-preference primary, never to itself or worse; waits while it is down', async () => {
  const dns = await startDns(new Map(ZONE));
  const w = root({
    me: 'me.test\n',
    dnsservers: `127.0.0.1:${dns.port}\n`,
    rcpthosts: 'backup.test\n',
    timeoutconnect: '2\n',
  });
  const msg = join(w.root, 'msg');
  writeFileSync(msg, 'Subject: x\n\nbody\n');
  const job = { recipient: 'u@backup.test', sender: 's@x.test', messagePath: msg };
  // The primary is not listening yet: find a port free on 127.0.0.2, and listen on it on 127.0.0.1 and .3.
  const probe = await counter('127.0.0.2');
  const port = probe.port;
  await new Promise<void>((resolve) => probe.server.close(() => resolve()));
  const self = createServer((s) => s.destroy());
  const selfHits: number[] = [];
  self.on('connection', () => selfHits.push(1));
  await new Promise<void>((resolve) => self.listen(port, '127.0.0.1', resolve));
  self.unref();
  const worse = createServer((s) => s.destroy());
  const worseHits: number[] = [];
  worse.on('connection', () => worseHits.push(1));
  await new Promise<void>((resolve) => worse.listen(port, '127.0.0.3', resolve));
  worse.unref();
  const opts = { control: w.control, mxPort: port, ipme: new Set(['127.0.0.1', '0.0.0.0']) };
  assert.deepEqual(await deliverRemote(job, opts), {
    result: 'deferral',
    report: "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
  });
  assert.equal(selfHits.length + worseHits.length, 0, 'never to itself or a worse MX');
  // The primary comes back: the retry reaches it.
  const back = await counter('127.0.0.2', port);
  const r = await deliverRemote(job, opts);
  assert.equal(r.result, 'success', r.report);
  assert.equal(r.report, '127.0.0.2 accepted message.\nRemote host said: 250 queued\n');
  assert.equal(back.connections.length, 1);
  for (const s of [self, worse, back.server]) s.close();
  await dns.close();
  rmSync(w.root, { recursive: true });
});

void test("IPv6: an MX with only an AAAA record is reached over IPv6 (::1), with qmail's report naming the address", async (t) => {
  let v6: TestSmtp;
  try {
    v6 = await testSmtp('::1', { replies: { end: '250 queued over v6' } });
  } catch (err) {
    // A machine without IPv6 loopback cannot run this; say so rather than pass silently.
    t.skip(`no IPv6 loopback here: ${(err as Error).message}`);
    return;
  }
  const dns = await startDns(
    new Map<string, DnsName>([
      ['v6.test', { mx: [{ pref: 10, exchange: 'mx6.v6.test' }] }],
      ['mx6.v6.test', { aaaa: ['::1'] }],
    ]),
  );
  const w = root({ me: 'me.test\n', dnsservers: `127.0.0.1:${dns.port}\n` });
  const msg = join(w.root, 'msg');
  writeFileSync(msg, 'Subject: v6\n\nbody\n');
  try {
    // ipme without ::1: here ::1 stands for a remote IPv6 host (with it, E.4 would refuse it as this machine).
    const r = await deliverRemote(
      { recipient: 'u@v6.test', sender: 's@x.test', messagePath: msg },
      { control: w.control, mxPort: v6.port, ipme: new Set(['127.0.0.1']) },
    );
    assert.deepEqual(r, { result: 'success', report: '::1 accepted message.\nRemote host said: 250 queued over v6\n' });
    assert.deepEqual(
      v6.messages.map((m) => m.recipients),
      [['u@v6.test']],
    );
    // With ::1 among this machine's addresses it is "me": qmail's loop rule, permanent.
    const me = await deliverRemote(
      { recipient: 'u@v6.test', sender: 's@x.test', messagePath: msg },
      { control: w.control, mxPort: v6.port, ipme: new Set(['127.0.0.1', '::1']) },
    );
    assert.equal(me.result, 'failure', me.report);
    assert.match(me.report, /#5\.4\.6/);
  } finally {
    await v6.close();
    await dns.close();
    rmSync(w.root, { recursive: true });
  }
});
