// The list tables (migration 6) and the writer's checks, on SQLite and on a real PostgreSQL cluster.
// tier: system (needs PostgreSQL)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errText } from '../core/index.js';
import { DirectoryError, openDirectory, type Directory } from '../directory/index.js';
import { startCluster, type Cluster } from '../../test/support/pgcluster.js';
import { makeCookie } from './cookie.js';
import { applyWrite } from './writer.js';

let cluster: Cluster | null = null;
let reason = '';
const base = mkdtempSync(join(tmpdir(), 'quail-lists-tables-'));
before(async () => {
  try {
    cluster = await startCluster();
  } catch (err) {
    reason = errText(err);
  }
});
after(() => {
  cluster?.stop();
  rmSync(base, { recursive: true, force: true });
});

const DAY = 86_400_000;
const acct = { user: 'nobody', uid: 65534, gid: 65534 };

async function contract(d: Directory): Promise<void> {
  await d.addDomain({ name: 'example.com', account: acct });
  const t = d.lists;
  const l = await t.create('Example.COM', 'Team', 's3cret', { subjectPrefix: '[team]', maxBytes: 1000 });
  assert.deepEqual(
    [l.domain, l.local, l.secret, l.options.subjectPrefix, l.options.maxBytes, l.options.moderated],
    ['example.com', 'team', 's3cret', '[team]', 1000, false],
  );
  await assert.rejects(t.create('example.com', 'team', 'x'), /exists already/);
  await assert.rejects(t.create('nowhere.example', 'team', 'x'), /no domain/);
  await assert.rejects(t.create('example.com', '-bad', 'x'), DirectoryError);
  await assert.rejects(t.create('example.com', 'a'.repeat(65), 'x'), DirectoryError);
  await assert.rejects(t.update('example.com', 'team', { maxBytes: -1 }), DirectoryError);
  await assert.rejects(t.update('example.com', 'team', { subjectPrefix: 'a\nBcc: x' }), DirectoryError);
  const u = await t.update('example.com', 'team', { moderated: true, membersOnly: true, maxBytes: null });
  assert.deepEqual(
    [u.options.moderated, u.options.membersOnly, u.options.maxBytes, u.options.subjectPrefix],
    [true, true, null, '[team]'],
  );
  assert.equal(await t.addMember('example.com', 'team', 'subscriber', 'Joe@Example.ORG'), true);
  assert.equal(await t.addMember('example.com', 'team', 'subscriber', 'joe@example.org'), false);
  assert.equal(await t.addMember('example.com', 'team', 'owner', 'joe@example.org'), true);
  for (const bad of ['no-at', 'a b@example.org', '"q"@example.org', `${'x'.repeat(250)}@example.org`, 'a@bad/dom'])
    await assert.rejects(t.addMember('example.com', 'team', 'subscriber', bad), DirectoryError, bad);
  await assert.rejects(t.addMember('example.com', 'nolist', 'subscriber', 'a@b.example'), /no list/);
  assert.deepEqual(
    (await t.members('example.com', 'team', 'subscriber')).map((m) => m.address),
    ['joe@example.org'],
  );
  // Bounces: counted, first and last kept; a probe; the probe forgotten.
  const b1 = await t.recordBounce('example.com', 'team', 'joe@example.org', 1000);
  const b2 = await t.recordBounce('example.com', 'team', 'joe@example.org', 5000);
  assert.deepEqual(
    [b1?.bounces, b2?.bounces, b2?.firstBounce?.getTime(), b2?.lastBounce?.getTime()],
    [1, 2, 1000, 5000],
  );
  assert.equal(await t.recordBounce('example.com', 'team', 'nobody@example.org', 1), null);
  await t.setProbe('example.com', 'team', 'joe@example.org', 6000);
  assert.equal((await t.getMember('example.com', 'team', 'subscriber', 'joe@example.org'))?.probeSent?.getTime(), 6000);
  await t.setProbe('example.com', 'team', 'joe@example.org', null);
  const reset = await t.getMember('example.com', 'team', 'subscriber', 'joe@example.org');
  assert.deepEqual([reset?.bounces, reset?.firstBounce, reset?.probeSent], [0, null, null]);
  assert.deepEqual(
    (await t.all()).map((x) => x.local),
    ['team'],
  );
  assert.equal(await t.removeMember('example.com', 'team', 'owner', 'JOE@example.org'), true);
  assert.equal(await t.remove('example.com', 'team'), true);
  assert.equal(await t.remove('example.com', 'team'), false);
  assert.deepEqual(await t.members('example.com', 'team', 'subscriber'), []);
  // The domain's setting for users' own lists (migration 9): off until set, set twice, refused for no domain.
  assert.equal(await t.usersMayCreate('example.com'), false);
  await t.setUsersMayCreate('Example.com', true);
  await t.setUsersMayCreate('example.com', true);
  assert.equal(await t.usersMayCreate('EXAMPLE.com'), true);
  await t.setUsersMayCreate('example.com', false);
  assert.equal(await t.usersMayCreate('example.com'), false);
  await t.setUsersMayCreate('example.com', true);
  await assert.rejects(t.setUsersMayCreate('nowhere.example', true), /no domain nowhere\.example/);
  // A domain's deletion takes its lists, their people and its list setting.
  await t.create('example.com', 'other', 'x');
  await t.addMember('example.com', 'other', 'subscriber', 'a@b.example');
  await d.deleteDomain('example.com');
  assert.deepEqual(await t.all(), []);
  await d.addDomain({ name: 'example.com', account: acct });
  assert.equal(await t.usersMayCreate('example.com'), false, 'a new domain of the same name starts without it');
}

/** The writer: cookies checked (forged, expired, other action), subscriptions, and the bounce rule. */
async function writerContract(d: Directory): Promise<void> {
  await d.addDomain({ name: 'example.com', account: acct });
  const t = d.lists;
  await t.create('example.com', 'team', 'secret');
  const now = 1_700_000_000_000;
  const rule = { days: 10 };
  const sc = makeCookie('secret', 'sc', 'ann@example.org', now);
  const req = { op: 'confirm', domain: 'example.com', list: 'team', action: 'sc', address: 'ann@example.org' } as const;
  assert.deepEqual(await applyWrite(t, { ...req, cookie: sc }, now, rule), { ok: true, outcome: 'subscribed' });
  assert.deepEqual(await applyWrite(t, { ...req, cookie: sc }, now, rule), { ok: true, outcome: 'already-subscribed' });
  const forged = await applyWrite(t, { ...req, address: 'eve@example.org', cookie: sc }, now, rule);
  assert.ok(!forged.ok && forged.permanent && /does not match/.test(forged.text), JSON.stringify(forged));
  const old = await applyWrite(t, { ...req, cookie: sc }, now + 11 * DAY, rule);
  assert.ok(!old.ok && /too old/.test(old.text), JSON.stringify(old));
  const uc = await applyWrite(t, { ...req, action: 'uc', cookie: sc }, now, rule);
  assert.ok(!uc.ok, 'an sc cookie does not unsubscribe');
  for (const junk of ['', 'x', '1.zz', `${'9'.repeat(12)}.${'a'.repeat(20)}`])
    assert.equal((await applyWrite(t, { ...req, cookie: junk }, now, rule)).ok, false, junk);
  const bad = await applyWrite(t, { ...req, address: 'not an address', cookie: sc }, now, rule);
  assert.ok(!bad.ok && bad.permanent);
  const none = await applyWrite(t, { ...req, list: 'nolist', cookie: sc }, now, rule);
  assert.ok(!none.ok && /no list/.test(none.text));
  // Bounces: counted for 10 days, then a probe; a bounced probe removes the address.
  const bounce = (post: number | 'probe', at: number) =>
    applyWrite(t, { op: 'bounce', domain: 'example.com', list: 'team', address: 'ann@example.org', post }, at, rule);
  assert.deepEqual(await bounce(1, now), { ok: true, outcome: 'counted', bounces: 1 });
  assert.deepEqual(await bounce('probe', now), { ok: true, outcome: 'ignored' }, 'no probe was sent');
  assert.deepEqual(await bounce(2, now + 5 * DAY), { ok: true, outcome: 'counted', bounces: 2 });
  assert.deepEqual(await bounce(3, now + 10 * DAY), { ok: true, outcome: 'probe', bounces: 3 });
  assert.deepEqual(await bounce(4, now + 11 * DAY), { ok: true, outcome: 'counted', bounces: 4 });
  assert.deepEqual(await bounce('probe', now + 11 * DAY), { ok: true, outcome: 'removed', bounces: 4 });
  assert.equal(await t.getMember('example.com', 'team', 'subscriber', 'ann@example.org'), null);
  // A probe that did not bounce within the period: the count starts over.
  await t.addMember('example.com', 'team', 'subscriber', 'bob@example.org');
  const b = (post: number, at: number) =>
    applyWrite(t, { op: 'bounce', domain: 'example.com', list: 'team', address: 'bob@example.org', post }, at, {
      days: 0,
    });
  assert.deepEqual(await b(1, now), { ok: true, outcome: 'probe', bounces: 1 });
  assert.deepEqual(await b(2, now + DAY), { ok: true, outcome: 'probe', bounces: 1 }, 'old probe forgotten, new one');
  // One-click: its own cookie action.
  const oc = makeCookie('secret', 'oneclick', 'bob@example.org', now);
  const one = { op: 'oneclick', domain: 'example.com', list: 'team', address: 'bob@example.org' } as const;
  assert.equal((await applyWrite(t, { ...one, cookie: sc }, now, rule)).ok, false);
  assert.deepEqual(await applyWrite(t, { ...one, cookie: oc }, now + 400 * DAY, rule), {
    ok: true,
    outcome: 'unsubscribed',
  });
}

/**
 * A list takes its own name and every `NAME-...` of its domain (`.qmail-NAME-default`): the directory refuses a list
 * over existing mailboxes and aliases there, and a mailbox or an alias under an existing list's names, naming the one
 * in the way — in the transaction that adds the row, so the CLI, the web and the import all meet it.
 */
async function namesContract(d: Directory): Promise<void> {
  await d.addDomain({ name: 'a.test', account: acct });
  const t = d.lists;
  const mbox = (local: string) => d.addMailbox({ domain: 'a.test', local, passwordHash: '' });
  // A list over existing names: refused, the mailbox or alias named.
  await mbox('it-owner');
  await assert.rejects(t.create('a.test', 'it', 'x'), /the mailbox it-owner@a\.test exists, and a list it@a\.test/);
  await d.addAlias('a.test', 'sales-subscribe', ['joe@other.example']);
  await assert.rejects(t.create('a.test', 'Sales', 'x'), /the alias sales-subscribe@a\.test exists/);
  await mbox('joe');
  await assert.rejects(t.create('a.test', 'joe', 'x'), /joe@a\.test is already a mailbox or an alias/);
  await assert.rejects(t.create('a.test', 'joe-list', 'x'), /the mailbox joe@a\.test receives joe-list@a\.test/);
  // '_' is a list name's character, not a wildcard: a_b takes a_b-..., not axb-....
  await mbox('axb-1');
  await t.create('a.test', 'a_b', 'x');
  await t.create('a.test', 'it-x', 'x');
  assert.deepEqual(
    (await t.all('a.test')).map((l) => l.local),
    ['a_b', 'it-x'],
  );
  // Mailboxes and aliases under an existing list's names: refused, the list named.
  await t.create('a.test', 'team', 'x');
  await assert.rejects(mbox('Team-Subscribe'), /the mailing list team@a\.test takes every team-\.\.\. address/);
  await assert.rejects(mbox('team-return-1-x=y.example'), /mailing list team@a\.test/);
  await assert.rejects(mbox('team'), /the mailing list team@a\.test takes that address: a mailbox team@a\.test/);
  await assert.rejects(d.addAlias('a.test', 'team-owner', ['joe@a.test']), /mailing list team@a\.test.*an alias/);
  await assert.rejects(d.addAlias('a.test', 'team', ['joe@a.test']), /mailing list team@a\.test/);
  // A mailbox `dev` would own dev-x@ as its extension, which the list dev-x has: refused as createList refuses the
  // pair the other way round; an alias `dev` gets no extension addresses and is allowed.
  await t.create('a.test', 'dev-x', 'x');
  await assert.rejects(mbox('dev'), /the mailing list dev-x@a\.test takes dev-x@a\.test, an extension address/);
  await d.addAlias('a.test', 'dev', ['joe@a.test']);
  // Names that only look alike stay free.
  for (const free of ['teams', 'team_subscribe', 'xteam-owner', 'a-b-1', 'it_x']) await mbox(free);
  assert.equal(await t.remove('a.test', 'team'), true);
  await mbox('team-subscribe');
}

let n = 0;
const sqlite = (): Promise<Directory> => openDirectory({ root: mkdtempSync(join(base, `s${++n}-`)) });
async function pg(): Promise<Directory> {
  if (!cluster) assert.fail(`PostgreSQL is required: ${reason}`);
  return openDirectory({ root: mkdtempSync(join(base, `p${++n}-`)), url: await cluster.newDatabase() });
}

for (const [name, open] of [
  ['sqlite', sqlite],
  ['postgres', pg],
] as const) {
  void test(`${name}: list tables — lists, options, people, bounces, cascade on domain deletion`, async () => {
    const d = await open();
    try {
      await contract(d);
    } finally {
      await d.close();
    }
  });
  void test(`${name}: a list and the mailboxes and aliases under its names refuse each other`, async () => {
    const d = await open();
    try {
      await namesContract(d);
    } finally {
      await d.close();
    }
  });
  void test(`${name}: the list writer checks cookies and applies the bounce rule`, async () => {
    const d = await open();
    try {
      await writerContract(d);
    } finally {
      await d.close();
    }
  });
}
