// Root's triggers to the send child within one turn: a wake-up covers any trigger, a named message only itself.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coversTrigger } from './send.js';

const A = '0lb3k9a2x-3f9q0c1m2n4p';
const B = '0lb3k9a2y-aaaaaaaaaaaa';

void test('a trigger naming a message is covered only by a wake-up without an id or by the same message', () => {
  assert.equal(coversTrigger({ type: 'trigger', id: A }, { type: 'trigger', id: B }), false, 'two messages: both go');
  assert.equal(coversTrigger({ type: 'trigger', id: A }, { type: 'trigger', id: A }), true);
  assert.equal(coversTrigger({ type: 'trigger' }, { type: 'trigger', id: B }), true, 'the scan finds it');
  assert.equal(coversTrigger({ type: 'trigger', id: A }, { type: 'trigger' }), false, 'a scan is still wanted');
  assert.equal(coversTrigger({ type: 'trigger' }, { type: 'trigger' }), true);
  assert.equal(coversTrigger({ type: 'flush' }, { type: 'trigger', id: A }), false);
});
