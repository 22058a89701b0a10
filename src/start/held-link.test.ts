// HeldAutoTurn on a real mail root made by `quail held add`: which session addresses ask for a push, and how often.
// tier: system (needs the quail CLI: init, held add)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quail, setupRoot } from '../../test/support/start.js';
import { HeldAutoTurn } from './held-link.js';

void test('HeldAutoTurn: only its networks, only with mail waiting, once per domain in 30 s; HELD changes within 5 s', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-autoturn-link-'));
  setupRoot(root, 'isp.test', []);
  const add = (domain: string, nets: readonly string[], more: readonly string[] = []): string =>
    quail([
      'held',
      'add',
      domain,
      '--root',
      root,
      '--host',
      '127.0.0.3:2525',
      ...nets.flatMap((n) => ['--autoturn', n]),
      ...more,
    ]);
  add('some.example.com', ['192.0.2.0/28', '2001:db8::/32']);
  add('plain.example.com', []); // no AutoTURN
  const home = join(root, 'held', 'some.example.com');
  let now = 1_000_000;
  const asked: string[] = [];
  const events: string[] = [];
  const at = new HeldAutoTurn(
    root,
    (d) => asked.push(d),
    (e, f) => events.push(`${e} ${JSON.stringify(f)}`),
    () => now,
  );
  // Nothing waiting: no push, and the rate limit is not used up.
  assert.deepEqual(await at.check('192.0.2.5'), []);
  writeFileSync(join(home, 'Maildir', 'new', '1.M1P1.isp.test'), 'Delivered-To: x\n\n');
  writeFileSync(join(root, 'held', 'plain.example.com', 'Maildir', 'new', '1.M1P1.isp.test'), 'Delivered-To: x\n\n');
  // Outside every network (and not an address at all): nothing.
  for (const ip of ['192.0.2.16', '198.51.100.1', '2001:db9::1', 'unix', ''])
    assert.deepEqual(await at.check(ip), [], ip);
  // Inside: an IPv4-mapped address as node gives it for a dual-stack listener, and IPv6.
  assert.deepEqual(await at.check('::ffff:192.0.2.15'), ['some.example.com']);
  assert.deepEqual(events, ['held.autoturn {"domain":"some.example.com","ip":"192.0.2.15"}']);
  // More sessions within 30 s: nothing more.
  assert.deepEqual(await at.check('192.0.2.1'), []);
  now += 29;
  assert.deepEqual(await at.check('2001:db8::7'), []);
  // After 30 s: two sessions ending at once ask once.
  now += 1;
  const both = await Promise.all([at.check('192.0.2.1'), at.check('2001:db8::7')]);
  assert.deepEqual(both.flat(), ['some.example.com']);
  assert.deepEqual(asked, ['some.example.com', 'some.example.com']);
  // A network given to a domain later counts from the next read of the HELD files (at most 5 s later).
  add('plain.example.com', ['198.51.100.0/24'], ['--replace']);
  assert.deepEqual(await at.check('198.51.100.1'), []);
  now += 5;
  assert.deepEqual(await at.check('198.51.100.1'), ['plain.example.com']);
  // A bad line in a hand-edited HELD is skipped; the good one still works.
  writeFileSync(join(home, 'HELD'), 'autoturn 192.0.2.0/99\nautoturn 203.0.113.9\n');
  now += 30;
  assert.deepEqual(await at.check('192.0.2.1'), []);
  assert.deepEqual(await at.check('203.0.113.9'), ['some.example.com']);
  // Files older than 2 s whose size, mtime and inode did not change are not read again (a few stats every 5 s):
  // a HELD rewritten behind its stamp's back (same size, mtime put back) is not seen; a real change is.
  const past = new Date(Date.now() - 60_000);
  const files = [join(root, 'control', 'virtualdomains'), join(root, 'users', 'cdb'), join(home, 'HELD')];
  files.push(join(root, 'held', 'plain.example.com', 'HELD'));
  for (const f of files) utimesSync(f, past, past);
  now += 30;
  assert.deepEqual(await at.check('203.0.113.9'), ['some.example.com']); // read again: the files were fresh
  writeFileSync(join(home, 'HELD'), 'autoturn 192.0.2.0/99\nautoturn 203.0.113.8\n');
  utimesSync(join(home, 'HELD'), past, past);
  now += 30;
  assert.deepEqual(await at.check('203.0.113.8'), [], 'the stamp held: not read again');
  writeFileSync(join(home, 'HELD'), 'autoturn 203.0.113.8\n');
  utimesSync(join(home, 'HELD'), past, past); // a different size
  now += 5;
  assert.deepEqual(await at.check('203.0.113.8'), ['some.example.com']);
  assert.equal(events.filter((e) => e.startsWith('held.error')).length, 0, events.join('\n'));
});
