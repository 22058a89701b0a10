// The event catalogue: the README's table lists every event with its level, and children can log only catalogued names.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { EVENTS, isEventName, type EventName } from './events.js';
import { levelOf, relayEvent, type EventLog } from './log.js';
import { repoPath } from '../../test/support/paths.js';

const README = repoPath('src', 'start', 'README.md');

void test('the README table lists every catalogued event, with its level, and no other', () => {
  const rows = [...readFileSync(README, 'utf8').matchAll(/^\| `([^`]+)` \| (\w+) \|/gm)].map((m) => [
    m[1] ?? '',
    m[2] ?? '',
  ]);
  const catalogued = Object.keys(EVENTS);
  assert.deepEqual(rows.map(([n]) => n).sort(), [...catalogued].sort());
  for (const [name, level] of rows) assert.equal(level, levelOf(name ?? ''), `${name}`);
});

void test('process lifecycle events are errors when the process dies or cannot start; services keep their own names', () => {
  const table: Array<[EventName, string]> = [
    ['smtpd.crashed', 'error'],
    ['pop3d.crashed', 'error'],
    ['sendd.crashed', 'error'],
    ['smtpd.busy', 'info'],
    ['smtpd.error', 'error'],
    ['pop3.error', 'error'],
    ['smtp.refused', 'warn'],
    ['send.warning', 'warn'],
    ['send.delivery', 'info'],
  ];
  for (const [name, level] of table) assert.equal(levelOf(name), level, name);
  assert.equal(isEventName('sendd.died'), false, 'the old name of sendd.crashed');
  assert.equal(isEventName('smtp.listening'), true);
  assert.equal(isEventName('toString'), false);
});

void test('relayEvent: a child logs only under a catalogued name, with an object of fields', () => {
  const seen: string[] = [];
  const log: EventLog = { event: (name, fields) => void seen.push(`${name} ${JSON.stringify(fields)}`) };
  relayEvent(log, 'smtp.queued', { id: 'x' });
  relayEvent(log, 'smtp.queued\nquail.started', { id: 'y' });
  relayEvent(log, 'made.up', { id: 'z' });
  relayEvent(log, 'smtp.close', 'not fields');
  relayEvent(log, 42, {});
  assert.deepEqual(seen, ['smtp.queued {"id":"x"}']);
});
