// End to end against the oracle: bn-001 through the real queue and scheduler, the bounce compared as qmail sent it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { DeliveryResult } from '../core/index.js';
import type { LocalResult } from '../local/types.js';
import { makeWorld, normalise } from '../../test/support/scheduler.js';
import { logsafe } from './verp.js';
import { repoPath } from '../../test/support/paths.js';

/** From the repository's pinned oracle corpus (test/conformance/corpus), found from this file, not the cwd. */
const SCENARIO = repoPath('test', 'conformance', 'corpus', 'bn-001-one-bounce-for-several-failures.json');
const NOSUCH = 'Sorry, no mailbox here by that name. (#5.1.1)\n';
const REJECT =
  '127.0.0.1 does not like recipient.\nRemote host said: 550 sink: no such user here\nGiving up on 127.0.0.1.\n';

interface Bn001 {
  input: { control: Record<string, string>; messages: Array<{ sender: string; recipients: string[]; data: string }> };
  outcome: {
    messages: Array<{
      label: string;
      deliveries: Array<{ channel: string; recipient: string; result: string; report: string }>;
    }>;
    remote: Array<{ mail_from: string; data: string }>;
  };
}

/** Splits a QSBMF bounce into head, the set of failure paragraphs, and the rest (FORMAT.md 9.6). */
function parts(text: string): { head: string; paragraphs: string[]; tail: string } {
  const start = text.indexOf('\n\n<') + 2;
  const end = text.indexOf('--- Below this line');
  return {
    head: text.slice(0, start),
    paragraphs: text
      .slice(start, end)
      .split(/(?<=\n\n)(?=<)/)
      .sort(),
    tail: text.slice(end),
  };
}

void test('bn-001: deliveries, log results and the bounce text match the oracle', async () => {
  const s = JSON.parse(readFileSync(SCENARIO, 'utf8')) as Bn001;
  const msg = s.input.messages[0];
  assert.ok(msg);
  const w = await makeWorld({
    control: { ...s.input.control, bounceformat: 'qsbmf\n' },
    local: (job): LocalResult =>
      job.local === 'qoalice' ? { result: 'success', report: 'did 1+0+0\n' } : { result: 'failure', report: NOSUCH },
    remote: (job): DeliveryResult =>
      job.recipient.startsWith('reject550')
        ? { result: 'failure', report: REJECT }
        : { result: 'deferral', report: 'held back by the test\n' },
  });
  try {
    await w.scheduler.start();
    const id = await w.inject(msg.sender, msg.recipients, msg.data);
    await w.scheduler.runUntilIdle();
    // messages[m1].deliveries: (channel, recipient, result, report) as a multiset.
    const want = s.outcome.messages
      .find((m) => m.label === 'm1')
      ?.deliveries.map((d) => `${d.channel} ${d.recipient} ${d.result} ${d.report}`)
      .sort();
    const results = new Map<number, string>();
    for (const e of w.logger.events)
      if (e.name === 'delivery')
        results.set(
          Number(e.fields['delivery']),
          `${String(e.fields['result'])} ${logsafe(String(e.fields['report']))}`,
        );
    const got = w.logger.events
      .filter((e) => e.name === 'start' && e.fields['msg'] === id)
      .map(
        (e) =>
          `${String(e.fields['channel'])} ${String(e.fields['to'])} ${results.get(Number(e.fields['delivery'])) ?? '?'}`,
      )
      .sort();
    assert.deepEqual(got, want);
    const [b] = await w.byOrigin('bounce', id);
    assert.ok(b);
    const oracle = s.outcome.remote.find((r) => r.mail_from === '');
    assert.ok(oracle);
    const ours = normalise(w.text(b.id));
    const a = parts(ours);
    const e = parts(oracle.data);
    assert.equal(a.head, e.head);
    assert.deepEqual(a.paragraphs, e.paragraphs);
    assert.equal(a.tail, e.tail);
  } finally {
    await w.close();
  }
});
