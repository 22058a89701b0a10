// The pieces of src/lists without a server: ezmlm's addresses, cookies, header parsing, list administration
// (files, refusals, permissions), the archive's members-only reading and one-click's checks, over a real SQLite file.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { openQueue } from '../queue/index.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDomain, createMailbox, DirectoryError, openDirectory } from '../directory/index.js';
import { decodeAddress, encodeAddress, parseRequest } from './address.js';
import { archivePost } from './archive.js';
import { checkCookie } from './cookie.js';
import { fieldValue, parseMessage } from './message.js';
// What the web admin will use, through the component's entrance.
import {
  addMembers,
  archiveIndex,
  archiveMessage,
  createList,
  deleteList,
  directWriter,
  listFileDrift,
  listHome,
  makeCookie,
  mayManageList,
  ONE_CLICK_PREFIX,
  oneClickUnsubscribe,
  parseListAddress,
  repairListFiles,
  runListProgram,
  setListOptions,
  type ArchiveEntry,
  type ListCtx,
  type NewList,
  type OneClickAnswer,
  type WriteAnswer,
  type WriteRequest,
} from './index.js';

const base = mkdtempSync(join(tmpdir(), 'quail-lists-unit-'));
after(() => rmSync(base, { recursive: true, force: true }));
const DAY = 86_400_000;

void test('ezmlm addresses: commands, cookies, VERP returns, and junk', () => {
  assert.deepEqual(parseRequest('subscribe'), { kind: 'subscribe' });
  assert.deepEqual(parseRequest('Subscribe-Joe=Example.ORG'), { kind: 'subscribe', address: 'Joe@Example.ORG' });
  assert.deepEqual(parseRequest('unsubscribe-a=b=c.example'), { kind: 'unsubscribe', address: 'a=b@c.example' });
  assert.deepEqual(parseRequest('help'), { kind: 'help' });
  assert.deepEqual(parseRequest('sc.1700000000.0123456789abcdef0123-joe=example.org'), {
    kind: 'sc',
    cookie: '1700000000.0123456789abcdef0123',
    address: 'joe@example.org',
  });
  assert.deepEqual(parseRequest('accept-00112233aabbccdd.17.ab'), {
    kind: 'accept',
    id: '00112233aabbccdd',
    cookie: '17.ab',
  });
  assert.deepEqual(parseRequest('return-12-joe=example.org'), { kind: 'return', post: 12, address: 'joe@example.org' });
  assert.deepEqual(parseRequest('return-probe-joe=example.org'), {
    kind: 'return',
    post: 'probe',
    address: 'joe@example.org',
  });
  assert.deepEqual(parseRequest('return-'), { kind: 'return', post: null, address: null });
  for (const junk of ['', 'subscribe-', 'subscribe-noequals', 'sc.x-joe', 'sc.1.ab-', 'frob', 'x'.repeat(5000)])
    assert.equal(parseRequest(junk).kind, 'unknown', junk.slice(0, 20));
  assert.equal(encodeAddress('joe@example.org'), 'joe=example.org');
  assert.equal(decodeAddress('joe=example.org'), 'joe@example.org');
  assert.equal(decodeAddress('joe='), null);
});

void test('cookies: bound to secret, action and address; they expire; forged ones are told apart', () => {
  const now = 1_700_000_000_000;
  const c = makeCookie('s', 'sc', 'Joe@Example.org', now);
  assert.equal(checkCookie('s', 'sc', 'joe@example.org', c, now + DAY), 'ok');
  assert.equal(checkCookie('s', 'sc', 'joe@example.org', c, now + 11 * DAY), 'expired');
  assert.equal(checkCookie('other', 'sc', 'joe@example.org', c, now), 'forged');
  assert.equal(checkCookie('s', 'uc', 'joe@example.org', c, now), 'forged');
  assert.equal(checkCookie('s', 'sc', 'ann@example.org', c, now), 'forged');
  assert.equal(checkCookie('s', 'sc', 'joe@example.org', c, now - 2 * 3_600_000), 'forged', 'from the future');
  assert.equal(
    checkCookie(
      's',
      'oneclick',
      'joe@example.org',
      makeCookie('s', 'oneclick', 'joe@example.org', now),
      now + 900 * DAY,
    ),
    'ok',
  );
  for (const junk of ['', '1.2', 'zz.0123456789abcdef0123', `1.${'g'.repeat(20)}`])
    assert.equal(checkCookie('s', 'sc', 'a@b', junk, now), 'forged');
});

void test('header parsing: folded fields, a message without a body, a body without a header', () => {
  const p = parseMessage(Buffer.from('Subject: one\n two\nX-A: b\n\nbody\n\nmore\n'));
  assert.equal(fieldValue(p, 'subject'), 'one two');
  assert.equal(p.body.toString(), 'body\n\nmore\n');
  assert.equal(parseMessage(Buffer.from('Subject: only\n')).body.length, 0);
  const nohead = parseMessage(Buffer.from('\njust body\n'));
  assert.deepEqual([nohead.fields.length, nohead.body.toString()], [0, 'just body\n']);
});

async function world(): Promise<{ root: string; dir: Awaited<ReturnType<typeof openDirectory>> }> {
  const root = mkdtempSync(join(base, 'r-'));
  const dir = await openDirectory({ root });
  const uid = process.getuid?.() ?? 1000;
  const acct = { user: 'x', uid: uid === 0 ? 65534 : uid, gid: uid === 0 ? 65534 : (process.getgid?.() ?? 1000) };
  await createDomain({ root, dir }, { name: 'example.com', account: acct });
  await createMailbox({ root, dir }, { address: 'joe@example.com', password: 'pw' });
  await dir.addAliasDomain('alias.example', 'example.com');
  return { root, dir };
}

void test('create and delete: .qmail-LIST files, refusals for names in use, owners may manage', async () => {
  const { root, dir } = await world();
  const ctx = { root, dir };
  try {
    const spec: NewList = { address: 'Team.Dev@example.com', owners: ['joe@example.com'] };
    const l = await createList(ctx, spec);
    assert.deepEqual(parseListAddress('Team.Dev@Example.COM'), { domain: 'example.com', local: 'team.dev' });
    assert.throws(() => parseListAddress('nobody'), DirectoryError);
    const d = join(root, 'domains', 'example.com');
    assert.match(readFileSync(join(d, '.qmail-team:dev'), 'latin1'), /\|quail list-post 'example\.com' 'team\.dev'\n$/);
    assert.match(readFileSync(join(d, '.qmail-team:dev-default'), 'latin1'), /\|quail list-manage /);
    assert.ok(existsSync(join(listHome(root, 'example.com', 'team.dev'), 'archive')));
    await assert.rejects(createList(ctx, { address: 'joe@example.com' }), /already a mailbox/);
    await assert.rejects(createList(ctx, { address: 'team.dev-subscribe@example.com' }), /would share addresses/);
    await createList(ctx, { address: 'ops-x@example.com' });
    await assert.rejects(createList(ctx, { address: 'ops@example.com' }), /would share addresses \(ops-\.\.\.\)/);
    await deleteList(ctx, 'ops-x@example.com');
    await assert.rejects(createList(ctx, { address: 'joe-list@example.com' }), /receives joe-list@example\.com/);
    await assert.rejects(createList(ctx, { address: 'team@alias.example' }), /alias domain of example\.com/);
    await assert.rejects(createList(ctx, { address: 'team@nowhere.example' }), /no domain/);
    await assert.rejects(createList(ctx, { address: 'bad/name@example.com' }), DirectoryError);
    writeFileSync(join(d, '.qmail-sales'), './sales/Maildir/\n');
    await assert.rejects(createList(ctx, { address: 'sales@example.com' }), /is not a list's/);
    assert.equal(await mayManageList(ctx, l, { kind: 'login', login: 'JOE@example.com' }), true);
    assert.equal(await mayManageList(ctx, l, { kind: 'login', login: 'eve@example.com' }), false);
    assert.equal(await mayManageList(ctx, l, { kind: 'system' }), true);
    const eve = { kind: 'login', login: 'eve@example.com' } as const;
    await assert.rejects(addMembers(ctx, eve, 'team.dev@example.com', 'subscriber', ['a@b.example']), /may not manage/);
    await assert.rejects(setListOptions(ctx, eve, 'team.dev@example.com', { moderated: true }), /may not manage/);
    // quail directory check: a list file removed by hand is drift, and --repair writes it again.
    assert.deepEqual(await listFileDrift(ctx), []);
    rmSync(join(d, '.qmail-team:dev-default'));
    writeFileSync(join(d, '.qmail-team:dev'), './elsewhere/\n');
    assert.deepEqual(
      (await listFileDrift(ctx)).map((x) => [x.path, x.problem]),
      [
        [join(d, '.qmail-team:dev'), "is not list team.dev@example.com's"],
        [join(d, '.qmail-team:dev-default'), 'missing (list team.dev@example.com)'],
      ],
    );
    await repairListFiles(ctx);
    assert.deepEqual(await listFileDrift(ctx), []);
    await deleteList(ctx, 'team.dev@example.com');
    assert.equal(existsSync(join(d, '.qmail-team:dev')), false);
    assert.equal(existsSync(listHome(root, 'example.com', 'team.dev')), false);
    assert.equal(existsSync(join(d, '.qmail-sales')), true, "someone else's .qmail stays");
    await assert.rejects(deleteList(ctx, 'team.dev@example.com'), /no list/);
  } finally {
    await dir.close();
  }
});

void test("a list never takes an existing mailbox's mail, and no mailbox or alias is made under a list's names", async () => {
  const { root, dir } = await world();
  const ctx = { root, dir };
  const d = join(root, 'domains', 'example.com');
  try {
    // quail list create it@... while it-owner@ is a mailbox: refused (mail to it-owner would go to the list's owners).
    await createMailbox(ctx, { address: 'it-owner@example.com', password: null });
    await assert.rejects(
      createList(ctx, { address: 'it@example.com', owners: ['joe@example.com'] }),
      /the mailbox it-owner@example\.com exists, and a list it@example\.com would take its mail/,
    );
    assert.equal(existsSync(join(d, '.qmail-it-default')), false, 'no list file written');
    assert.equal(await dir.lists.get('example.com', 'it'), null);
    await dir.addAlias('example.com', 'sales-info', ['joe@example.com']);
    await assert.rejects(createList(ctx, { address: 'sales@example.com' }), /the alias sales-info@example\.com exists/);
    // quail user add team-subscribe@... (or an alias) while the list team exists: refused, the list named.
    await createList(ctx, { address: 'team@example.com', owners: ['joe@example.com'] });
    await assert.rejects(
      createMailbox(ctx, { address: 'team-subscribe@example.com', password: 'pw' }),
      /the mailing list team@example\.com takes every team-\.\.\. address: a mailbox team-subscribe@example\.com/,
    );
    assert.equal(existsSync(join(d, 'team-subscribe')), false, 'no home made');
    await assert.rejects(dir.addAlias('example.com', 'team-owner', ['joe@example.com']), /mailing list team@example/);
    await assert.rejects(createMailbox(ctx, { address: 'team@example.com', password: 'pw' }), /takes that address/);
    // Deleting the list frees its names.
    await deleteList(ctx, 'team@example.com');
    await createMailbox(ctx, { address: 'team-subscribe@example.com', password: 'pw' });
  } finally {
    await dir.close();
  }
});

void test('the archive: numbered posts, readable by members only', async () => {
  const { root, dir } = await world();
  const ctx: ListCtx = { root, dir };
  try {
    const l = await createList(ctx, { address: 'team@example.com', owners: ['joe@example.com'] });
    const home = listHome(root, 'example.com', 'team');
    assert.equal(archivePost(home, Buffer.from('Subject: one\nFrom: a@b.example\n\nx\n')), 1);
    assert.equal(archivePost(home, Buffer.from('Subject: two\n\ny\n')), 2);
    await addMembers(ctx, { kind: 'system' }, 'team@example.com', 'subscriber', ['sub@example.org']);
    const idx: ArchiveEntry[] = await archiveIndex(ctx, l, { kind: 'login', login: 'sub@example.org' });
    assert.deepEqual(
      idx.map((e) => [e.n, e.subject]),
      [
        [2, 'two'],
        [1, 'one'],
      ],
    );
    assert.match(
      (await archiveMessage(ctx, l, { kind: 'login', login: 'joe@example.com' }, 1))?.toString() ?? '',
      /^Subject: one/,
    );
    assert.equal(await archiveMessage(ctx, l, { kind: 'system' }, 99), null);
    assert.equal(await archiveMessage(ctx, l, { kind: 'system' }, -1), null);
    await assert.rejects(archiveIndex(ctx, l, { kind: 'login', login: 'eve@example.com' }), /members only/);
  } finally {
    await dir.close();
  }
});

void test('one-click unsubscribe: the path, the body, the cookie are all checked', async () => {
  const { root, dir } = await world();
  try {
    const l = await createList({ root, dir }, { address: 'team@example.com' });
    await dir.lists.addMember('example.com', 'team', 'subscriber', 'sub@example.org');
    const w = directWriter(dir.lists, { days: 10 });
    const cookie = makeCookie(l.secret, 'oneclick', 'sub@example.org', Date.now());
    const path = `${ONE_CLICK_PREFIX}example.com/team/sub%3Dexample.org/${cookie}`;
    const body = 'List-Unsubscribe=One-Click';
    assert.equal((await oneClickUnsubscribe(w, '/elsewhere', body)).status, 404);
    assert.equal((await oneClickUnsubscribe(w, '/lists/unsubscribe/%E0%A4%A/x/y/z', body)).status, 404);
    assert.equal((await oneClickUnsubscribe(w, '/lists/unsubscribe/example.com/team/sub', body)).status, 404);
    assert.equal((await oneClickUnsubscribe(w, path, 'List-Unsubscribe=Yes')).status, 400);
    assert.equal((await oneClickUnsubscribe(w, path.replace('team', 'other'), body)).status, 403);
    const flipped = `${path.slice(0, -1)}${path.endsWith('0') ? '1' : '0'}`;
    assert.equal((await oneClickUnsubscribe(w, flipped, body)).status, 403);
    const done: OneClickAnswer = await oneClickUnsubscribe(w, path, body);
    assert.equal(done.status, 200);
    // The writer's own request and answer, as the socket carries them.
    const req: WriteRequest = {
      op: 'oneclick',
      domain: 'example.com',
      list: 'team',
      address: 'sub@example.org',
      cookie,
    };
    const again: WriteAnswer = await w.apply(req);
    assert.deepEqual(again, { ok: true, outcome: 'not-subscribed' });
    assert.deepEqual(await dir.lists.members('example.com', 'team', 'subscriber'), []);
    assert.match((await oneClickUnsubscribe(w, path, body)).text, /was not subscribed/);
  } finally {
    await dir.close();
  }
});

void test('the list programs never throw: hostile requests get exit 100 with a short reason, trouble 111', async () => {
  const { root, dir } = await world();
  try {
    await createList({ root, dir }, { address: 'team@example.com' });
    const queued = (): number => {
      const d = join(root, 'queue', 'env');
      return existsSync(d) ? readdirSync(d).length : 0;
    };
    const run = (kind: 'post' | 'manage', env: Record<string, string>, args = ['example.com', 'team']) =>
      runListProgram({ root, kind, args, env, message: Buffer.from('Subject: x\n\nbody\n') });
    // No queue yet: a temporary failure that says why, not a crash.
    const noQueue = await run('manage', { SENDER: 'ann@example.org', DEFAULT: 'subscribe' });
    assert.equal(noQueue.exit, 111, noQueue.text);
    (await openQueue(root)).close();
    const cases: Array<[string, RegExp]> = [
      [`subscribe-${'x'.repeat(100_000)}=example.org`, /is not a usable address/],
      ['subscribe-joe=bad!host', /is not a domain name/],
      ['sc.1700000000.0123456789abcdef0123-eve=example.org', /confirmation code does not match/],
      ['uc.99999999999.0123456789abcdef0123-eve=example.org', /confirmation code does not match/],
      ['accept-0011223344556677.1700000000.0123456789abcdef0123', /not valid/],
      ['\u0000\n\u00ff-x', /is not a command of this list/],
      ['x'.repeat(100_000), /is not a command of this list/],
    ];
    for (const [ext, re] of cases) {
      const r = await run('manage', { SENDER: 'ann@example.org', DEFAULT: ext });
      assert.equal(r.exit, 100, `${ext.slice(0, 40)}: ${r.text.slice(0, 200)}`);
      assert.match(r.text, re);
      assert.ok(r.text.length < 1000 && !r.text.includes('\n'), r.text.slice(0, 200));
    }
    assert.equal(queued(), 0, 'nothing was sent for them');
    assert.equal((await run('post', { SENDER: '' })).exit, 100, 'no bounces to the list');
    assert.equal(
      (await run('post', { SENDER: 'team-return-3-a=b.example@example.com' })).exit,
      0,
      'own return: dropped',
    );
    assert.equal((await run('manage', { SENDER: 'a@b.example' }, ['example.com'])).exit, 111);
    assert.equal(
      (await run('manage', { SENDER: 'a@b.example', DEFAULT: 'help' }, ['example.com', 'nolist'])).exit,
      100,
    );
    const ok = await run('manage', { SENDER: 'ann@example.org', DEFAULT: 'subscribe' });
    assert.deepEqual(ok, { exit: 0, text: 'list team@example.com: subscribe confirmation sent to ann@example.org' });
    assert.equal(queued(), 1);
  } finally {
    await dir.close();
  }
});
