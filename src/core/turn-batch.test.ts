import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TurnBatch, unbatch, type BatchMessage } from './turn-batch.js';

type M = { readonly type: string; readonly n: number };
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

void test('TurnBatch: a lone message is sent as itself, at the end of the turn', async () => {
  const sent: Array<M | BatchMessage<M>> = [];
  const b = new TurnBatch<M>((m) => sent.push(m));
  b.send({ type: 'x', n: 1 });
  assert.equal(sent.length, 0, 'nothing is written before the turn ends');
  await turn();
  assert.deepEqual(sent, [{ type: 'x', n: 1 }]);
});

void test('TurnBatch: the messages of one turn go as one batch, in order; the next turn starts a new one', async () => {
  const sent: Array<M | BatchMessage<M>> = [];
  const b = new TurnBatch<M>((m) => sent.push(m));
  for (let n = 1; n <= 3; n++) b.send({ type: 'x', n });
  await turn();
  b.send({ type: 'y', n: 4 });
  await turn();
  assert.deepEqual(sent, [
    {
      type: 'batch',
      items: [
        { type: 'x', n: 1 },
        { type: 'x', n: 2 },
        { type: 'x', n: 3 },
      ],
    },
    { type: 'y', n: 4 },
  ]);
});

void test('TurnBatch: flush() sends what waits at once (so a message sent past the batch keeps its place)', async () => {
  const sent: Array<M | BatchMessage<M>> = [];
  const b = new TurnBatch<M>((m) => sent.push(m));
  b.send({ type: 'x', n: 1 });
  assert.equal(
    b.waiting((m) => m.type === 'x'),
    true,
  );
  assert.equal(
    b.waiting((m) => m.type === 'y'),
    false,
  );
  b.flush();
  assert.deepEqual(sent, [{ type: 'x', n: 1 }]);
  assert.equal(
    b.waiting((m) => m.type === 'x'),
    false,
  );
  await turn();
  assert.equal(sent.length, 1, 'the turn-end flush finds nothing more to send');
});

void test('unbatch: a batch gives its items in order, anything else is itself, a malformed batch gives nothing', () => {
  const got: unknown[] = [];
  unbatch({ type: 'batch', items: [1, { type: 'a' }, null] }, (x) => got.push(x));
  unbatch({ type: 'deliver', id: 7 }, (x) => got.push(x));
  unbatch('text', (x) => got.push(x));
  unbatch({ type: 'batch', items: 'not a list' }, (x) => got.push(x));
  unbatch({ type: 'batch' }, (x) => got.push(x));
  assert.deepEqual(got, [1, { type: 'a' }, null, { type: 'deliver', id: 7 }, 'text']);
});
