// The failed-login slowdown: doubling, per address and per login, cap, forgetting; one count per mailbox whatever
// the login's spelling; a full table drops what costs least, never everything.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loginKey } from '../core/index.js';
import { splitLogin } from '../directory/names.js';
import { ConnectionLimits, LoginThrottle, RemoteThrottle, serveThrottle, type ThrottleRequest } from './index.js';

void test('LoginThrottle: doubles per failure, per address and per login, capped, forgotten after a while', () => {
  let now = 0;
  const t = new LoginThrottle({ baseMs: 100, maxMs: 1000, forgetMs: 60_000, clock: () => now });
  assert.equal(t.delayFor('192.0.2.1', 'joe@x'), 0);
  t.failed('192.0.2.1', 'joe@x');
  assert.equal(t.delayFor('192.0.2.1', 'joe@x'), 100);
  t.failed('192.0.2.1', 'joe@x');
  t.failed('192.0.2.1', 'joe@x');
  assert.equal(t.delayFor('192.0.2.1', 'other@x'), 400, 'per address');
  assert.equal(t.delayFor('198.51.100.7', 'joe@x'), 400, 'per login, from another address');
  assert.equal(t.delayFor('198.51.100.7', 'other@x'), 0);
  for (let i = 0; i < 10; i++) t.failed('192.0.2.1', 'joe@x');
  assert.equal(t.delayFor('192.0.2.1', 'joe@x'), 1000, 'capped');
  t.succeeded('joe@x');
  assert.equal(t.delayFor('198.51.100.7', 'joe@x'), 0, 'success forgets the login');
  assert.equal(t.delayFor('192.0.2.1', 'joe@x'), 1000, 'but not the address');
  now = 61_000;
  assert.equal(t.delayFor('192.0.2.1', 'joe@x'), 0, 'forgotten');
});

void test('ConnectionLimits: maxconn in all, maxperip per address; release frees exactly one slot', () => {
  const l = new ConnectionLimits(3, 2);
  assert.equal(l.admit('10.0.0.1'), 'ok');
  assert.equal(l.admit('10.0.0.1'), 'ok');
  assert.equal(l.admit('10.0.0.1'), 'maxperip');
  assert.equal(l.admit('10.0.0.2'), 'ok');
  assert.equal(l.admit('10.0.0.3'), 'maxconn');
  assert.equal(l.open, 3);
  l.release('10.0.0.1');
  assert.equal(l.from('10.0.0.1'), 1);
  assert.equal(l.admit('10.0.0.3'), 'ok');
  assert.equal(l.admit('10.0.0.4'), 'maxconn');
  for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) l.release(ip);
  assert.equal(l.open, 0);
  assert.equal(l.from('10.0.0.1'), 0);
});

void test('RemoteThrottle over serveThrottle: one table for several processes; a clean attempt asks nothing', async () => {
  const clock = (): number => 0;
  const table = new LoginThrottle({ baseMs: 100, clock });
  const procs: RemoteThrottle[] = [];
  const asked: string[] = [];
  // what quail start's IPC does (login-hub.ts): the answer to the asker, the news to every other process
  const link =
    (me: number) =>
    (r: ThrottleRequest): boolean => {
      if (r.op === 'attempt') asked.push(`${me}:${r.login}`);
      const { answer, news } = serveThrottle(table, r);
      queueMicrotask(() => {
        if (answer) procs[me]?.heard(answer);
        if (news) for (const [i, p] of procs.entries()) if (i !== me) p.heard(news);
      });
      return true;
    };
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
  const a = new RemoteThrottle(link(0), { baseMs: 100, clock });
  const b = new RemoteThrottle(link(1), { baseMs: 100, clock });
  procs.push(a, b);
  assert.equal(await a.attempt('192.0.2.1', 'joe@x'), 0);
  assert.deepEqual(asked, [], 'nothing against the address or the login: no round trip');
  a.failed('192.0.2.1', 'joe@x');
  await tick();
  assert.equal(await b.attempt('198.51.100.7', 'JOE%x'), 100, "A's failure slows B's attempt (any spelling)");
  assert.deepEqual(asked, ['1:JOE%x'], 'B asked the table');
  b.failed('198.51.100.7', 'JOE%x');
  await tick();
  assert.equal(table.delayFor('203.0.113.9', 'joe@x'), 200, 'one count: a failure in each process is two');
  // attempts at once in two processes wait one more delay each, as in one process
  const waits = await Promise.all([a.attempt('203.0.113.1', 'joe@x'), b.attempt('203.0.113.2', 'joe@x')]);
  assert.deepEqual(waits, [200, 400]);
  b.ended('203.0.113.2', 'joe@x');
  a.succeeded('joe@x', '203.0.113.1');
  await tick();
  assert.equal(table.delayFor('203.0.113.9', 'joe@x'), 0, 'a success forgets the login in the table');
  asked.length = 0;
  assert.equal(await b.attempt('203.0.113.9', 'joe@x'), 0);
  assert.deepEqual(asked, [], 'and in the other process: no round trip for it any more');
  // a process that starts later is told everything known; with no table to ask, its copy's delay holds
  const c = new RemoteThrottle(() => false, { baseMs: 100, clock });
  c.heard({ op: 'known', entries: table.known() });
  assert.equal(await c.attempt('192.0.2.1', 'ann@x'), 100, 'the address failure is known');
  assert.equal(await c.attempt('203.0.113.9', 'ann@x'), 0);
  for (const junk of [
    null,
    'x',
    7,
    {},
    { op: 'failed', login: 'joe@x' },
    { op: 'other', ip: '1', login: 'joe@x' },
    { op: 'failed', ip: 1, login: 'j' },
    { op: 'attempt', ip: '1', login: 'j' },
    { op: 'known', entries: [['x:1', 1, 0], ['ip:1', 'x', 0], 'y', ['login:j', 0, 0]] },
    { op: 'wait', ask: 1, ms: -1 },
  ]) {
    c.heard(junk);
    assert.deepEqual(serveThrottle(table, junk), {}, JSON.stringify(junk));
  }
  assert.equal(await c.attempt('1', 'j'), 0, 'nothing malformed was counted');
});

void test('LoginThrottle: every spelling the directory takes for one mailbox is one login (case, user%domain)', () => {
  const t = new LoginThrottle({ baseMs: 100, maxMs: 10_000, clock: () => 0 });
  for (let i = 0; i < 3; i++) t.failed('192.0.2.1', 'joe@hunt.test');
  for (const spelling of ['joe@hunt.test', 'JOE@hunt.test', 'joe@HUNT.TEST', 'joe%hunt.test', 'Joe%Hunt.Test'])
    assert.equal(t.delayFor('198.51.100.7', spelling), 400, spelling);
  t.failed('192.0.2.2', 'JOE%HUNT.test');
  assert.equal(t.delayFor('198.51.100.7', 'joe@hunt.test'), 800, 'a failure under another spelling counts too');
  assert.equal(t.delayFor('198.51.100.7', 'jo@hunt.test'), 0, 'another mailbox is not slowed');
  t.succeeded('Joe%hunt.TEST');
  assert.equal(t.delayFor('198.51.100.7', 'joe@hunt.test'), 0, 'a success under any spelling forgets it');
});

void test('loginKey: the name the directory looks the mailbox up by (its own splitLogin), whatever the spelling', () => {
  const cases: Array<[string, string]> = [
    ['joe@hunt.test', 'joe@hunt.test'],
    ['JOE@Hunt.Test', 'joe@hunt.test'],
    ['Joe%Hunt.Test', 'joe@hunt.test'],
    ['a%b@c.test', 'a%b@c.test'], // the later of '@' and '%' splits, as the directory does
    ['a@b%C.test', 'a@b@c.test'],
    ['JOE', 'joe'], // no domain: the directory refuses it; still one count for every case
    ['@x.test', '@x.test'],
    ['ÄRGER@x.test', 'Ärger@x.test'], // only ASCII folds, as in the directory (and qmail)
  ];
  for (const [login, key] of cases) {
    assert.equal(loginKey(login), key, login);
    const parts = splitLogin(login);
    if (parts !== null) assert.equal(key, parts.join('@'), `the directory reads ${login} so`);
  }
});

void test('LoginThrottle: a full table drops the cheapest entries first, never the counts of a login under attack', () => {
  let now = 0;
  const t = new LoginThrottle({ baseMs: 1000, maxMs: 30_000, clock: () => now });
  for (let i = 0; i < 6; i++) t.failed('192.0.2.1', 'victim@hunt.test'); // slowed to 30 s
  assert.equal(t.delayFor('198.51.100.7', 'victim@hunt.test'), 30_000);
  now = 1000;
  t.failed('192.0.2.2', 'old@hunt.test');
  t.failed('192.0.2.2', 'old@hunt.test');
  // a flood of throwaway logins from throwaway addresses (IPv6 gives plenty): one failure each, 300,000 keys
  for (let i = 0; i < 150_000; i++) t.failed(`2001:db8::${i.toString(16)}`, `x${i}@junk.test`);
  assert.ok(t.size <= 100_000, `bounded: ${t.size}`);
  assert.ok(t.size >= 90_000, `pruned only down to nine tenths: ${t.size}`);
  assert.equal(t.delayFor('198.51.100.7', 'victim@hunt.test'), 30_000, 'the login under attack is still slowed');
  assert.equal(t.delayFor('198.51.100.7', 'old@hunt.test'), 2000, 'two failures outlive one');
  assert.equal(t.delayFor('192.0.2.1', 'nobody@hunt.test'), 30_000, 'so does the guessing address');
  assert.equal(t.delayFor('2001:db8::0', 'nobody@hunt.test'), 0, 'the oldest throwaway keys went first');
  assert.equal(t.delayFor('2001:db8::249ef', 'nobody@hunt.test'), 1000, 'the newest stayed');
  // expired entries go before anything else, whatever their count; then the least recently updated
  const s = new LoginThrottle({ baseMs: 1000, maxKeys: 100, clock: () => now });
  for (let i = 0; i < 5; i++) s.failed('192.0.2.1', 'gone@hunt.test');
  now += 16 * 60_000;
  for (let i = 0; i < 49; i++) s.failed(`198.51.100.${i}`, `z${i}@junk.test`);
  assert.equal(s.size, 100, 'full');
  s.failed('192.0.2.4', 'new@hunt.test'); // prunes: the 2 expired keys, then 8 more down to 90
  assert.equal(s.size, 92);
  assert.equal(s.delayFor('198.51.100.3', 'z3@junk.test'), 0, 'the four oldest pairs went');
  assert.equal(s.delayFor('198.51.100.4', 'z4@junk.test'), 1000, 'not a fifth: the expired keys went first');
  assert.equal(s.delayFor('192.0.2.4', 'new@hunt.test'), 1000);
});

void test('LoginThrottle.attempt: guesses at once for a slowed login or address wait one more delay each; clean ones none', () => {
  const now = 0;
  const t = new LoginThrottle({ baseMs: 100, maxMs: 1000, clock: () => now });
  for (let i = 0; i < 10; i++) t.failed('192.0.2.1', 'joe@x'); // at the cap
  // thirty guesses sent together: the k-th waits k delays (they all waited 1,000 ms before)
  const waits = Array.from({ length: 30 }, (_, i) => t.attempt(`198.51.100.${i}`, 'joe@x'));
  assert.deepEqual(
    waits,
    Array.from({ length: 30 }, (_, i) => 1000 * (i + 1)),
  );
  // each verdict ends its attempt: the next one waits behind those still going
  for (let i = 0; i < 29; i++) t.failed(`198.51.100.${i}`, 'joe@x');
  assert.equal(t.attempt('203.0.113.9', 'JOE@X'), 2000, 'one still going ahead of it (spelling does not matter)');
  t.ended('203.0.113.9', 'joe@x');
  t.failed('198.51.100.29', 'joe@x');
  assert.equal(t.attempt('203.0.113.9', 'joe@x'), 1000);
  // a login and an address with no failure are never slowed, however many attempts run
  for (let i = 0; i < 5; i++) assert.equal(t.attempt('203.0.113.50', 'ann@x'), 0);
  // a success ends the address's attempt and forgets the login
  t.succeeded('joe@x', '203.0.113.9');
  assert.equal(t.attempt('203.0.113.77', 'joe@x'), 0);
});
