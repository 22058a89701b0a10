// LogBatch: events wait for a window (20 ms), except after flushSoon, which sends them at the end of the turn; the
// events of one turn go as one message, in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogBatch, type LogsMessage } from './log-batch.js';

const turnEnd = (): Promise<void> => new Promise((r) => setImmediate(r));

void test('LogBatch.flushSoon: what waits goes at the end of the turn, as one message, however often it is asked', async () => {
  const sent: LogsMessage[] = [];
  const logs = new LogBatch((m) => sent.push(m));
  logs.add('smtp.connect', { ip: '127.0.0.1' });
  logs.add('smtp.queued', { id: 'a' });
  logs.flushSoon();
  logs.add('smtp.queued', { id: 'b' }); // committed by the same grouped fsync: same turn
  logs.flushSoon();
  assert.equal(sent.length, 0, 'nothing is sent within the turn');
  await turnEnd();
  assert.equal(sent.length, 1, 'one message for the turn');
  assert.deepEqual(
    sent[0]?.events.map(([name, f]) => `${name} ${String(f['id'] ?? f['ip'])}`),
    ['smtp.connect 127.0.0.1', 'smtp.queued a', 'smtp.queued b'],
  );
  // the next turn's event waits for the window again, unless it too asks for soon
  logs.add('smtp.close', { ip: '127.0.0.1' });
  await turnEnd();
  assert.equal(sent.length, 1, 'without flushSoon an event waits for the window');
  logs.flushSoon();
  await turnEnd();
  assert.equal(sent.length, 2);
  assert.equal(sent[1]?.events[0]?.[0], 'smtp.close');
});
