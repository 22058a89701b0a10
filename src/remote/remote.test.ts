// deliverRemote against real SMTP sinks on 127.0.0.1: report texts (E.7), quoting (E.6), routes (E.2-E.3), data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:net';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Control } from '../control/index.js';
import {
  deliverRemote,
  ipLiteral,
  lookupRoute,
  routeCandidates,
  resolveTargets,
  type RemoteResolver,
} from './index.js';
import { parseMap } from '../control/index.js';
import { testSmtp, type TestSmtp } from '../../test/support/testsmtp.js';

/** A scripted sink on 127.0.0.1: replies by command verb (`end` after the dot: `250 ok done`). */
const sink = (replies: Partial<Record<string, string>>): Promise<TestSmtp> =>
  testSmtp('127.0.0.1', { replies: { end: '250 ok done', ...replies } });

function world(control: Record<string, string>, message: string): { root: string; control: Control; msg: string } {
  const root = mkdtempSync(join(tmpdir(), 'quail-remote-'));
  mkdirSync(join(root, 'control'));
  for (const [k, v] of Object.entries(control)) writeFileSync(join(root, 'control', k), v);
  const msg = join(root, 'msg');
  writeFileSync(msg, message, 'latin1');
  return { root, control: new Control(root), msg };
}

const closeAll = (s: Server): Promise<void> => new Promise((resolve) => s.close(() => resolve()));

void test('routeCandidates: whole host, dot suffixes left to right, then empty', () => {
  assert.deepEqual(routeCandidates('a.b.test'), ['a.b.test', '.b.test', '.test', '']);
});

void test('lookupRoute golden table (E.2, E.3)', () => {
  const map = parseMap(
    'remote.test:127.0.0.1:42526\n.sub.test:relay.test\n[127.0.0.1]:\n:10.0.0.1:26:junk\nREMOTE.Test:1.2.3.4\n',
  );
  const table: Array<[string, unknown]> = [
    ['remote.test', { kind: 'relay', relay: '1.2.3.4', port: 25, pattern: 'REMOTE.Test' }],
    ['x.sub.test', { kind: 'relay', relay: 'relay.test', port: 25, pattern: '.sub.test' }],
    ['[127.0.0.1]', { kind: 'mx', pattern: '[127.0.0.1]' }],
    ['other.test', { kind: 'relay', relay: '10.0.0.1', port: 26, pattern: '' }],
  ];
  for (const [host, want] of table) assert.deepEqual(lookupRoute(host, map), want, host);
  assert.deepEqual(lookupRoute('x.test', null), { kind: 'mx' });
});

void test('ipLiteral reads a dotted IP as qmail ip_scan does: any number of digits per part, modulo 256 (E.3, E.4)', () => {
  const table: Array<[string, string | null]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['[192.0.2.7]', '192.0.2.7'],
    ['127.0.0.0001', '127.0.0.1'],
    ['[127.0.0.257]', '127.0.0.1'],
    ['[0383.000.0.1]', '127.0.0.1'],
    ['1.2.3', null],
    ['1.2.3.4.', null],
    ['[1.2.3.4', null],
    ['1.2.3.4]', null],
    ['1.2.3.x', null],
    ['remote.test', null],
  ];
  for (const [text, want] of table) assert.equal(ipLiteral(text), want, text);
});

void test('an unrouted [literal] whose parts wrap to this host fails as best MX; a relay 127.0.0.0001 is 127.0.0.1', async () => {
  const ipme = new Set(['0.0.0.0', '127.0.0.1']);
  const noDns: RemoteResolver = {
    resolveMx: () => Promise.reject(Object.assign(new Error('no dns'), { code: 'ESERVFAIL' })),
    resolve4: () => Promise.reject(Object.assign(new Error('no dns'), { code: 'ESERVFAIL' })),
  };
  const self = await resolveTargets('[127.0.0.257]', { kind: 'mx' }, noDns, ipme);
  assert.equal(self.kind, 'permanent');
  const relay = await resolveTargets(
    'a.test',
    { kind: 'relay', relay: '127.0.0.0001', port: 42526, pattern: 'a.test' },
    noDns,
    ipme,
  );
  assert.deepEqual(relay, { kind: 'ok', targets: [{ ip: '127.0.0.1', pref: 0, name: '127.0.0.1' }] });
});

void test('accepted: EHLO, quoted MAIL/RCPT, CRLF and dot-stuffing, exact success report', async () => {
  const s = await sink({});
  const w = world({ me: 'mx.quail.test\n', smtproutes: `:127.0.0.1:${s.port}\n` }, 'Subject: x\n\n.dot\nline\n..two\n');
  const r = await deliverRemote(
    { recipient: 'john doe@remote.test', sender: 'a..b@origin.test', messagePath: w.msg },
    { control: w.control },
  );
  assert.deepEqual(r, { result: 'success', report: '127.0.0.1 accepted message.\nRemote host said: 250 ok done\n' });
  // (QUIT is not waited for, so it may not have arrived yet)
  assert.deepEqual(s.connections[0]?.lines.slice(0, 4), [
    'EHLO mx.quail.test',
    'MAIL FROM:<"a..b"@origin.test>',
    'RCPT TO:<"john doe"@remote.test>',
    'DATA',
  ]);
  assert.equal(s.connections[0]?.data, 'Subject: x\r\n\r\n..dot\r\nline\r\n...two\r\n');
  await closeAll(s.server);
  rmSync(w.root, { recursive: true });
});

void test('RCPT 550 is permanent, 451 temporary, with Giving up text', async () => {
  for (const [code, result] of [
    ['550 no such user', 'failure'],
    ['451 busy', 'deferral'],
  ] as const) {
    const s = await sink({ RCPT: code });
    const w = world(
      { me: 'me.test\n', helohost: 'helo.test\n', smtproutes: `remote.test:[127.0.0.1]:${s.port}\n` },
      'x\n',
    );
    const r = await deliverRemote(
      { recipient: 'u@remote.test', sender: '', messagePath: w.msg },
      { control: w.control },
    );
    assert.deepEqual(r, {
      result,
      report: `127.0.0.1 does not like recipient.\nRemote host said: ${code}\nGiving up on 127.0.0.1.\n`,
    });
    assert.deepEqual(s.connections[0]?.lines.slice(0, 2), ['EHLO helo.test', 'MAIL FROM:<>']);
    await closeAll(s.server);
    rmSync(w.root, { recursive: true });
  }
});

void test('EHLO refused falls back to HELO; sender and DATA rejections', async () => {
  const s = await sink({ EHLO: '502 no', MAIL: '553 go away' });
  const w = world({ me: 'me.test\n', smtproutes: `:127.0.0.1:${s.port}\n` }, 'x\n');
  const r = await deliverRemote(
    { recipient: 'u@remote.test', sender: 's@x.test', messagePath: w.msg },
    { control: w.control },
  );
  assert.deepEqual(r, {
    result: 'failure',
    report: 'Connected to 127.0.0.1 but sender was rejected.\nRemote host said: 553 go away\n',
  });
  assert.equal(s.connections[0]?.lines[1], 'HELO me.test');
  await closeAll(s.server);
  const s2 = await sink({ end: '452-first\r\n452 second' });
  const w2 = world({ me: 'me.test\n', smtproutes: `:127.0.0.1:${s2.port}\n` }, 'x\n');
  const r2 = await deliverRemote(
    { recipient: 'u@remote.test', sender: 's@x.test', messagePath: w2.msg },
    { control: w2.control },
  );
  assert.deepEqual(r2, {
    result: 'deferral',
    report: '127.0.0.1 failed after I sent the message.\nRemote host said: 452-first\n452 second\n',
  });
  await closeAll(s2.server);
  rmSync(w.root, { recursive: true });
  rmSync(w2.root, { recursive: true });
});

void test('partial final line is permanent and the final dot is never sent', async () => {
  const s = await sink({});
  const w = world({ me: 'me.test\n', smtproutes: `:127.0.0.1:${s.port}\n` }, 'Subject: x\n\nno newline');
  const r = await deliverRemote(
    { recipient: 'u@remote.test', sender: 's@x.test', messagePath: w.msg },
    { control: w.control },
  );
  assert.deepEqual(r, {
    result: 'failure',
    report: 'SMTP cannot transfer messages with partial final lines. (#5.6.2)\n',
  });
  assert.equal(s.connections[0]?.data, '');
  await closeAll(s.server);
  rmSync(w.root, { recursive: true });
});

void test('connection refused, no helohost/me, and greeting failure', async () => {
  const probe = await sink({});
  const deadPort = probe.port;
  await closeAll(probe.server);
  const w = world({ me: 'me.test\n', smtproutes: `:127.0.0.1:${deadPort}\n` }, 'x\n');
  const job = { recipient: 'u@remote.test', sender: 's@x.test', messagePath: w.msg };
  assert.deepEqual(await deliverRemote(job, { control: w.control }), {
    result: 'deferral',
    report: "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
  });
  const w2 = world({ smtproutes: `:127.0.0.1:${deadPort}\n` }, 'x\n');
  assert.deepEqual(await deliverRemote({ ...job, messagePath: w2.msg }, { control: w2.control }), {
    result: 'deferral',
    report: 'Unable to read control files. (#4.3.0)\n',
  });
  const s = await sink({ greeting: '554 not today' });
  const w3 = world({ me: 'me.test\n', smtproutes: `:127.0.0.1:${s.port}\n` }, 'x\n');
  assert.deepEqual(await deliverRemote({ ...job, messagePath: w3.msg }, { control: w3.control }), {
    result: 'deferral',
    report: 'Connected to 127.0.0.1 but greeting failed.\nRemote host said: 554 not today\n',
  });
  await closeAll(s.server);
  for (const x of [w, w2, w3]) rmSync(x.root, { recursive: true });
});

void test('best-preference MX is this host: permanent #5.4.6; lower-preference self is dropped', async () => {
  const resolver: RemoteResolver = {
    resolveMx: (h) =>
      Promise.resolve(
        h === 'me.test'
          ? [{ exchange: 'self.test', priority: 10 }]
          : [
              { exchange: 'other.test', priority: 5 },
              { exchange: 'self.test', priority: 10 },
            ],
      ),
    resolve4: (h) => Promise.resolve(h === 'self.test' ? ['192.0.2.1'] : ['192.0.2.2']),
  };
  const ipme = new Set(['192.0.2.1', '0.0.0.0']);
  const me = await resolveTargets('me.test', { kind: 'mx' }, resolver, ipme);
  assert.equal(me.kind, 'permanent');
  const other = await resolveTargets('x.test', { kind: 'mx' }, resolver, ipme);
  assert.deepEqual(other, { kind: 'ok', targets: [{ ip: '192.0.2.2', pref: 5, name: 'other.test' }] });
  const lit = await resolveTargets('[127.0.0.1]', { kind: 'mx' }, resolver, new Set(['127.0.0.1']));
  assert.equal(lit.kind, 'permanent');
  const routed = await resolveTargets(
    '[127.0.0.1]',
    { kind: 'relay', relay: '127.0.0.1', port: 25, pattern: '' },
    resolver,
    new Set(['127.0.0.1']),
  );
  assert.equal(routed.kind, 'ok');
});
