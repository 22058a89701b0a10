// The vacation reply's rules (RFC 3834) as golden tables, its once-per-period record, and the reply's header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeReply, dueFor, noReplyBecause, readHeader } from './vacation.js';

const fields = (o: Record<string, string>): Map<string, string[]> =>
  new Map(Object.entries(o).map(([k, v]) => [k.toLowerCase(), [v]]));

void test('noReplyBecause: never to bounces, programs, auto-submitted, bulk or list mail, or mail not naming the mailbox', () => {
  const me = ['joe@a.test'];
  const to = { To: 'Joe <joe@a.test>' };
  const cases: Array<[string, Record<string, string>, string | undefined]> = [
    ['ann@b.test', to, undefined],
    ['ann@b.test', { Cc: 'x@y.test, JOE@A.TEST' }, undefined],
    ['ann@b.test', { ...to, 'Auto-Submitted': 'no' }, undefined],
    ['', to, 'a bounce (null sender)'],
    ['#@[]', to, 'a bounce (null sender)'],
    ['MAILER-DAEMON@b.test', to, 'an automated sender'],
    ['team-request@lists.test', to, 'an automated sender'],
    ['owner-team@lists.test', to, 'an automated sender'],
    ['noreply@b.test', to, 'an automated sender'],
    ['ann@b.test', { ...to, 'Auto-Submitted': 'auto-replied' }, 'auto-submitted'],
    ['ann@b.test', { ...to, 'Auto-Submitted': 'auto-generated; type=dsn' }, 'auto-submitted'],
    ['ann@b.test', { ...to, Precedence: 'list' }, 'bulk or list mail (Precedence)'],
    ['ann@b.test', { ...to, Precedence: 'bulk' }, 'bulk or list mail (Precedence)'],
    ['ann@b.test', { ...to, 'List-Id': '<team.lists.test>' }, 'list mail'],
    ['ann@b.test', { ...to, 'List-Unsubscribe': '<mailto:x@y>' }, 'list mail'],
    ['ann@b.test', { To: 'team@lists.test' }, 'not addressed to the mailbox by name'],
    ['nodomain', to, 'a sender without a domain'],
  ];
  for (const [sender, h, want] of cases)
    assert.equal(noReplyBecause(sender, fields(h), me), want, `${sender} ${JSON.stringify(h)}`);
});

void test('dueFor: one reply per sender per period, counted from the last reply', async () => {
  const home = mkdtempSync(join(tmpdir(), 'quail-vacation-'));
  try {
    const day = 86_400_000;
    const t0 = 1_700_000_000_000;
    assert.equal(await dueFor(home, 'ann@b.test', 7, t0), true);
    assert.equal(await dueFor(home, 'ANN@b.test', 7, t0 + day), false, 'the same sender (case-insensitive)');
    assert.equal(await dueFor(home, 'bob@b.test', 7, t0 + day), true, 'another sender');
    assert.equal(await dueFor(home, 'ann@b.test', 7, t0 + 7 * day - 1), false);
    assert.equal(await dueFor(home, 'ann@b.test', 7, t0 + 7 * day), true, 'the period is over');
    assert.equal(await dueFor(home, 'ann@b.test', 7, t0 + 8 * day), false, 'counted from that reply');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

void test('readHeader and composeReply: folded fields, In-Reply-To, Auto-Submitted, a UTF-8 subject', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-vacation-'));
  try {
    const path = join(dir, 'msg');
    writeFileSync(
      path,
      'Subject: long\n  subject\nMessage-ID: <m1@b.test>\nTo: joe@a.test\n\nList-Id: <not a header>\n',
    );
    const h = await readHeader(path);
    assert.deepEqual(h.get('subject'), ['long subject']);
    assert.equal(h.has('list-id'), false, 'the body is not the header');
    const r = composeReply('joe@a.test', 'ann@b.test', { subject: '', body: 'Away.', days: 7 }, h, 0);
    assert.equal(r.recipient, 'ann@b.test');
    assert.match(r.message, /^From: <joe@a\.test>\nTo: <ann@b\.test>\nSubject: Auto: long subject\n/);
    assert.match(r.message, /\nIn-Reply-To: <m1@b\.test>\nReferences: <m1@b\.test>\n/);
    assert.match(r.message, /\nAuto-Submitted: auto-replied\n/);
    assert.match(r.message, /\n\nAway\.\n$/);
    const u = composeReply('joe@a.test', 'ann@b.test', { subject: 'Abwesend – Urlaub', body: 'x', days: 1 }, h, 0);
    assert.match(u.message, /\nSubject: =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
