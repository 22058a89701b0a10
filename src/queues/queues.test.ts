// control/queues and control/queuerules: golden tables of what parses, what is refused, and which queue is chosen.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Control } from '../control/index.js';
import { chooseQueue, domainMatches, parseQueues, parseRules, rulesFrom, type QueueFacts } from './index.js';

void test('queues: a line per queue, options over the control files, bad lines refused with the reason', () => {
  const p = parseQueues(
    [
      '# slow bounces',
      'bounces lifetime=86400 concurrencyremote=2 bounces=qsbmf',
      'example.com lifetime=259200 outgoingip=127.0.0.2 helohost=mx.example.com retry=300,900,3600 route=:[127.0.0.1]:2626 route=a.test:relay.test',
      'quiet bounces=none concurrencylocal=500',
      'default lifetime=1',
      'Bad!name',
      'x frobnicate=1',
      'y lifetime=soon',
      'y retry=0',
      'bounces',
      '',
    ].join('\n'),
  );
  assert.deepEqual([...p.queues.keys()], ['bounces', 'example.com', 'quiet']);
  const b = p.queues.get('bounces');
  assert.equal(b?.lifetime, 86400);
  assert.equal(b?.concurrencyremote, 2);
  assert.equal(b?.bounces, 'qsbmf');
  const e = p.queues.get('example.com');
  assert.deepEqual(e?.retry, [300, 900, 3600]);
  assert.equal(e?.outgoingip, '127.0.0.2');
  assert.equal(e?.routes?.get('')?.value, '[127.0.0.1]:2626');
  assert.equal(e?.routes?.get('a.test')?.value, 'relay.test');
  assert.equal(p.queues.get('quiet')?.concurrencylocal, 120, 'capped as concurrencylocal is');
  assert.deepEqual(
    p.errors.map((x) => [x.line, x.reason.split(':')[0]?.split(' ')[0]]),
    [
      [5, 'the'],
      [6, '"Bad!name"'],
      [7, 'unknown'],
      [8, 'lifetime=soon'],
      [9, 'retry=0'],
      [10, 'queue'],
    ],
  );
  assert.match(p.errors[0]?.reason ?? '', /default queue is configured by the ordinary control files/);
});

void test('queuerules: kinds, patterns, unknown queues and malformed lines', () => {
  const known = new Set(['default', 'a', 'b']);
  const r = parseRules(
    'listener 127.0.0.3:2525 a\nauth .example.com b\nsender example.net a\nrcpt * b\nbounce a\nbounce\nsender x.test c\nfrom x a\nlistener nowhere a\n',
    known,
  );
  assert.deepEqual(
    r.rules.map((x) => [x.line, x.kind, x.pattern, x.queue]),
    [
      [1, 'listener', '127.0.0.3:2525', 'a'],
      [2, 'auth', '.example.com', 'b'],
      [3, 'sender', 'example.net', 'a'],
      [4, 'rcpt', '*', 'b'],
      [5, 'bounce', '*', 'a'],
    ],
  );
  assert.deepEqual(
    r.errors.map((e) => e.line),
    [6, 7, 8, 9],
  );
  assert.match(r.errors[1]?.reason ?? '', /queue c is not defined in control\/queues/);
});

void test('domainMatches: rcpthosts semantics', () => {
  const cases: Array<[string, string, boolean]> = [
    ['example.com', 'example.com', true],
    ['example.com', 'EXAMPLE.com', true],
    ['example.com', 'a.example.com', false],
    ['.example.com', 'a.example.com', true],
    ['.example.com', 'example.com', false],
    ['*', 'anything.test', true],
  ];
  for (const [p, d, want] of cases) assert.equal(domainMatches(p, d), want, `${p} ~ ${d}`);
});

void test('chooseQueue: listener option first, then the rules in order, else default; each says why', () => {
  const known = new Set(['default', 'sub', 'corp', 'forged', 'hot', 'bounces']);
  const rules = parseRules(
    'listener 127.0.0.3:2587 sub\nauth example.com corp\nsender example.net forged\nrcpt .hotmail.test hot\nbounce bounces\n',
    known,
  );
  const f = (x: Partial<QueueFacts>): QueueFacts => ({ sender: 's@o.test', recipients: ['r@r.test'], ...x });
  const table: Array<[Partial<QueueFacts>, string]> = [
    [{}, 'default'],
    [{ listener: '127.0.0.3:2587' }, 'sub'],
    [{ listener: '127.0.0.2:2525', listenerQueue: 'hot' }, 'hot'],
    [{ listener: '127.0.0.2:2525', listenerQueue: 'nosuch' }, 'default'],
    [{ auth: 'joe@example.com', sender: 'joe@example.net' }, 'corp'],
    [{ auth: 'joe', sender: 'joe@example.net' }, 'forged'],
    [{ sender: 'x@EXAMPLE.NET' }, 'forged'],
    [{ recipients: ['a@r.test', 'b@mx.hotmail.test'] }, 'hot'],
    [{ sender: '', recipients: ['a@o.test'], bounce: true }, 'bounces'],
    [{ sender: '', recipients: ['a@o.test'] }, 'default'],
  ];
  for (const [facts, want] of table) assert.equal(chooseQueue(rules, f(facts)).queue, want, JSON.stringify(facts));
  assert.equal(chooseQueue(rules, f({ auth: 'joe@example.com' })).why, 'queuerules line 2: auth example.com corp');
  assert.equal(chooseQueue(rules, f({})).why, 'no rule matched');
});

void test('rulesFrom: parsed once per control snapshot (the messages of a session share them); a new snapshot reads the files again', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-rules-'));
  try {
    mkdirSync(join(root, 'control'));
    writeFileSync(join(root, 'control', 'queues'), 'bulk\n');
    writeFileSync(join(root, 'control', 'queuerules'), 'sender example.net bulk\n');
    const snapshot = new Control(root);
    const first = rulesFrom(snapshot);
    assert.equal(first.rules.length, 1);
    writeFileSync(join(root, 'control', 'queuerules'), 'sender example.net bulk\nrcpt example.org bulk\n');
    assert.equal(rulesFrom(snapshot), first, 'the same parsed rules for the same snapshot');
    const fresh = rulesFrom(new Control(root));
    assert.notEqual(fresh, first);
    assert.equal(fresh.rules.length, 2, 'a new snapshot sees the new file');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('queuerules filter=: a rule may end with filter=/PATH; the choice carries it; a bad one is refused', () => {
  const r = parseRules(
    [
      'sender scan.test a filter=/usr/local/bin/scan',
      'bounce a filter=/bin/true',
      'rcpt x.test a filter=relative/path',
      'rcpt x.test a filter=',
      'sender y.test filter=/bin/true',
      'rcpt y.test a',
    ].join('\n'),
    new Set(['default', 'a']),
  );
  assert.deepEqual(
    r.rules.map((x) => [x.line, x.kind, x.queue, x.filter]),
    [
      [1, 'sender', 'a', '/usr/local/bin/scan'],
      [2, 'bounce', 'a', '/bin/true'],
      [6, 'rcpt', 'a', undefined],
    ],
  );
  assert.deepEqual(
    r.errors.map((e) => [e.line, e.reason]),
    [
      [3, 'filter=relative/path: expected the absolute path of a qmail-queue program (filter=/PATH)'],
      [4, 'filter=: expected the absolute path of a qmail-queue program (filter=/PATH)'],
      [5, 'expected: sender PATTERN QUEUE [filter=/PATH]'],
    ],
  );
  assert.deepEqual(chooseQueue(r, { sender: 'joe@scan.test', recipients: ['x@far.test'] }), {
    queue: 'a',
    why: 'queuerules line 1: sender scan.test a filter=/usr/local/bin/scan',
    filter: '/usr/local/bin/scan',
  });
  assert.equal(chooseQueue(r, { sender: 'joe@other.test', recipients: ['x@y.test'] }).filter, undefined);
  assert.equal(chooseQueue(r, { sender: '', recipients: ['x@far.test'], bounce: true }).filter, '/bin/true');
  // the listener's queue= comes first and names no program
  assert.equal(
    chooseQueue(r, { sender: 'joe@scan.test', recipients: ['x@y.test'], listener: '[::1]:25', listenerQueue: 'a' })
      .filter,
    undefined,
  );
});
