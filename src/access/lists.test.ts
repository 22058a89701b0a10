// The list pages' decisions (scopes list and list-create) and changes through serveWeb, on a real SQLite directory with
// real list files: who may see, manage, moderate and read; a user's own list where the domain allows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDomain, createMailbox, openDirectory, type Ctx } from '../directory/index.js';
import { createList, listHome } from '../lists/index.js';
import { refusal, serveWeb, type Principal, type WebAnswer } from './index.js';

const acct = { user: 'nobody', uid: 65534, gid: 65534 };

async function fixture(body: (ctx: Ctx, as: (login: string) => Promise<Session>) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'quail-access-lists-'));
  const dir = await openDirectory({ root });
  const ctx = { root, dir };
  try {
    await createDomain(ctx, { name: 'a.example', account: acct });
    await createDomain(ctx, { name: 'b.example', account: acct });
    for (const a of [
      'ann@a.example',
      'own@a.example',
      'mod@a.example',
      'sub@a.example',
      'joe@a.example',
      'bea@b.example',
    ])
      await createMailbox(ctx, { address: a, password: 'pw' });
    await dir.addDomainAdmin('a.example', 'ann@a.example');
    await dir.addDomainAdmin('b.example', 'bea@b.example');
    await createList(ctx, { address: 'team@a.example', owners: ['own@a.example'], moderators: ['mod@a.example'] });
    await dir.lists.addMember('a.example', 'team', 'subscriber', 'sub@a.example');
    const as = async (login: string): Promise<Session> => {
      const a = await serveWeb(ctx, { op: 'login', login, password: 'pw' });
      assert.ok(a.ok && a.token !== undefined && a.who);
      const token = a.token;
      const csrf = a.who.csrf;
      return {
        view: (view) => serveWeb(ctx, { op: 'view', token, view }),
        change: (change) => serveWeb(ctx, { op: 'change', token, csrf, change }),
      };
    };
    await body(ctx, as);
  } finally {
    await dir.close();
    rmSync(root, { recursive: true, force: true });
  }
}

interface Session {
  view(v: Record<string, unknown>): Promise<WebAnswer>;
  change(c: Record<string, unknown>): Promise<WebAnswer>;
}

const status = (a: WebAnswer): number => (a.ok ? 200 : a.status);
const may = (a: WebAnswer): unknown => (a.ok && a.data?.view === 'list' ? a.data.may : a);

void test('refusal: the list scopes', () => {
  const joe: Principal = { kind: 'login', login: 'joe@a.example', systemAdmin: false, domains: [] };
  const ann: Principal = { kind: 'login', login: 'ann@a.example', systemAdmin: false, domains: ['a.example'] };
  const list = (is: boolean) => ({ scope: 'list', address: 'team@a.example', as: 'owner', is }) as const;
  assert.equal(refusal(joe, list(true)), undefined);
  assert.match(refusal(joe, list(false)) ?? '', /not an owner of the list team@a\.example nor an administrator/);
  assert.equal(refusal(ann, list(false)), undefined);
  assert.equal(refusal(joe, { scope: 'list-create', domain: 'a.example', usersMay: true }), undefined);
  assert.match(
    refusal(joe, { scope: 'list-create', domain: 'a.example', usersMay: false }) ?? '',
    /quail list users a\.example on/,
  );
  assert.ok(
    refusal(joe, { scope: 'list-create', domain: 'b.example', usersMay: true }) !== undefined,
    'not its domain',
  );
  assert.equal(refusal({ kind: 'system' }, { scope: 'list-create', domain: 'b.example', usersMay: false }), undefined);
});

void test('who sees what of a list: administrator, owner, moderator, subscriber, stranger, other domain', async () => {
  await fixture(async (_ctx, as) => {
    const v = { view: 'list', address: 'TEAM@a.example' };
    const all = { manage: true, moderate: true, read: true };
    assert.deepEqual(may(await (await as('ann@a.example')).view(v)), all, 'the domain administrator, not an owner');
    assert.deepEqual(may(await (await as('own@a.example')).view(v)), all);
    assert.deepEqual(may(await (await as('mod@a.example')).view(v)), { manage: false, moderate: true, read: true });
    const sub = await (await as('sub@a.example')).view(v);
    assert.deepEqual(may(sub), { manage: false, moderate: false, read: true });
    assert.ok(sub.ok && sub.data?.view === 'list' && sub.data.people.subscriber.length === 0, 'no people shown');
    assert.equal(status(await (await as('joe@a.example')).view(v)), 403);
    const bea = await as('bea@b.example');
    assert.equal(status(await bea.view(v)), 403);
    // a list that does not exist: 403 for who may not know, 404 for the domain's administrator
    assert.equal(status(await bea.view({ view: 'list', address: 'none@a.example' })), 403);
    assert.equal(status(await (await as('ann@a.example')).view({ view: 'list', address: 'none@a.example' })), 404);
    assert.equal(status(await bea.view({ view: 'post', address: 'team@a.example', n: 1 })), 403);
    assert.equal(status(await bea.view({ view: 'post', address: 'team@a.example', n: 0 })), 400);
    assert.equal(status(await bea.view({ view: 'nonsense' })), 400);
    // my lists: the administrator sees the domain's, a subscriber its own, the stranger none
    const mine = async (login: string): Promise<unknown> => {
      const a = await (await as(login)).view({ view: 'lists' });
      return a.ok && a.data?.view === 'lists' ? a.data.lists.map((l) => `${l.address} ${l.roles.join('+')}`) : a;
    };
    assert.deepEqual(await mine('ann@a.example'), ['team@a.example administrator']);
    assert.deepEqual(await mine('sub@a.example'), ['team@a.example subscriber']);
    assert.deepEqual(await mine('bea@b.example'), []);
  });
});

void test('changes: owners and administrators manage, moderators and others do not; users create lists where allowed', async () => {
  await fixture(async (ctx, as) => {
    const own = await as('own@a.example');
    const members = async (): Promise<string[]> =>
      (await ctx.dir.lists.members('a.example', 'team', 'subscriber')).map((m) => m.address);
    const add = { op: 'list.members', address: 'team@a.example', role: 'subscriber', add: ['x@y.example'], remove: [] };
    assert.equal(status(await own.change(add)), 200);
    assert.deepEqual(await members(), ['sub@a.example', 'x@y.example']);
    for (const who of ['mod@a.example', 'sub@a.example', 'bea@b.example'])
      assert.equal(status(await (await as(who)).change({ ...add, add: ['z@y.example'] })), 403, who);
    assert.deepEqual(await members(), ['sub@a.example', 'x@y.example']);
    // a forged CSRF token
    const a = await serveWeb(ctx, { op: 'login', login: 'own@a.example', password: 'pw' });
    assert.ok(a.ok && a.token !== undefined);
    assert.equal(status(await serveWeb(ctx, { op: 'change', token: a.token, csrf: 'forged', change: add })), 403);
    // options through src/lists, seen in the directory
    const opts = { op: 'list.options', address: 'team@a.example', options: { moderated: true, subjectPrefix: '[t]' } };
    assert.equal(status(await own.change(opts)), 200);
    assert.equal((await ctx.dir.lists.get('a.example', 'team'))?.options.subjectPrefix, '[t]');
    assert.equal(status(await own.change({ ...opts, options: { maxBytes: -1 } })), 400);
    // a moderator decides a post that is not waiting: said, 400; a forged id too
    const mod = await as('mod@a.example');
    const decide = { op: 'list.moderate', address: 'team@a.example', id: '0011223344556677', accept: true };
    assert.match(JSON.stringify(await mod.change(decide)), /no longer waiting/);
    assert.equal(status(await mod.change({ ...decide, id: '../../x' })), 400);
    assert.equal(status(await (await as('sub@a.example')).change(decide)), 403);
    // the held queue is listed for the moderator
    const held = join(listHome(ctx.root, 'a.example', 'team'), 'mod');
    mkdirSync(held, { recursive: true });
    writeFileSync(join(held, '0011223344556677'), 'sub@a.example\nSubject: <b>hi</b>\n\nbody\n');
    const page = await mod.view({ view: 'list', address: 'team@a.example' });
    assert.ok(page.ok && page.data?.view === 'list');
    assert.deepEqual(
      page.data.held.map((h) => [h.id, h.sender, h.subject]),
      [['0011223344556677', 'sub@a.example', '<b>hi</b>']],
    );

    // a user's own list: refused until the domain allows it; then it is its owner
    const joe = await as('joe@a.example');
    const mk = { op: 'list.create', address: 'joes@a.example', owners: [], moderators: [], options: {} };
    assert.equal(status(await joe.change(mk)), 403);
    assert.equal(status(await joe.change({ op: 'list.users', domain: 'a.example', on: true })), 403);
    assert.equal(
      status(await (await as('bea@b.example')).change({ op: 'list.users', domain: 'a.example', on: true })),
      403,
    );
    assert.equal(
      status(await (await as('ann@a.example')).change({ op: 'list.users', domain: 'a.example', on: true })),
      200,
    );
    assert.equal(status(await joe.change(mk)), 200);
    assert.deepEqual(
      (await ctx.dir.lists.members('a.example', 'joes', 'owner')).map((m) => m.address),
      ['joe@a.example'],
    );
    assert.equal(status(await joe.change({ ...mk, address: 'other@b.example' })), 403, 'only in its own domain');
    // the domain's administrator deletes a list it does not own; the other domain's cannot
    assert.equal(
      status(await (await as('bea@b.example')).change({ op: 'list.delete', address: 'joes@a.example' })),
      403,
    );
    assert.equal(
      status(await (await as('ann@a.example')).change({ op: 'list.delete', address: 'joes@a.example' })),
      200,
    );
    assert.equal(await ctx.dir.lists.get('a.example', 'joes'), null);
    assert.equal(status(await joe.change({ op: 'list.nonsense' })), 400);
  });
});
