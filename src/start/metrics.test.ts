// The metrics counted from events: names, labels, histograms, the queue gauges read from queue/env names.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EventLog } from './log.js';
import { Metrics } from './metrics.js';
import { lookupBatcher, takeLookupBatch } from './lookup-batch.js';

/** The value of one sample line, e.g. `quail_deliveries_total{channel="local",result="delivered"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

void test('events become counters and histograms; the log still gets every event', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-metrics-'));
  let now = 1_000_000;
  const m = new Metrics(root, () => now);
  const logged: string[] = [];
  const log: EventLog = m.wrap({ event: (name) => void logged.push(name) });
  log.event('smtp.connect', { ip: '127.0.0.1', listener: 'x', kind: 'smtp' });
  log.event('smtp.connect', { ip: '127.0.0.1', listener: 'x', kind: 'submission' });
  log.event('smtp.tls', { ip: '127.0.0.1', protocol: 'TLSv1.3' });
  log.event('smtp.reject', { ip: '127.0.0.1', why: 'rcpthosts', from: 'a@b', to: 'c@d' });
  log.event('smtp.refused', { ip: '127.0.0.1', why: 'size', from: 'a@b', bytes: 9 });
  // a reason that is not a short word (a client's text, say) does not become a label value of its own
  log.event('smtp.refused', { ip: '127.0.0.1', why: 'Some <long> text\nwith a line break' });
  log.event('smtp.queued', { id: '1', ip: '127.0.0.1', from: 'a@b', rcpts: 1, bytes: 10, protocol: 'ESMTPS' });
  log.event('send.new', { msg: 'm1' });
  log.event('send.start', { delivery: 1, msg: 'm1', channel: 'local', to: 'joe@x' });
  now += 2500;
  log.event('send.delivery', { delivery: 1, msg: 'm1', result: 'success', report: 'ok' });
  log.event('send.start', { delivery: 2, msg: 'm1', channel: 'remote', to: 'a@far' });
  log.event('send.delivery', { delivery: 2, msg: 'm1', result: 'deferral', report: 'later' });
  log.event('send.start', { delivery: 3, msg: 'm1', channel: 'remote', to: 'b@far' });
  log.event('send.delivery', { delivery: 3, msg: 'm1', result: 'failure', report: 'no' });
  log.event('send.bounce', { msg: 'm1', qp: 1, id: 'b', kind: 'failure', to: 'a@b' });
  log.event('send.end', { msg: 'm1' });
  log.event('smtpd.crashed', { pid: 1, code: 1, signal: null, crashes: 1, restart_in_ms: 0 });
  log.event('pop3.login', { login: 'joe@x', ip: '127.0.0.1', tls: true, via: 'user', messages: 0, octets: 0 });
  log.event('pop3.session', { login: 'joe@x', ip: '127.0.0.1', end: 'quit', retrieved: 0, deleted: 0, open: 0 });
  m.lookup('rcpt', 0.002);
  assert.equal(logged.length, 19, 'every event still logged');
  const { contentType, text } = await m.render();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  assert.equal(sample(text, 'quail_smtp_connections_total{kind="smtp"}'), 1);
  assert.equal(sample(text, 'quail_smtp_connections_total{kind="submission"}'), 1);
  assert.equal(sample(text, 'quail_smtp_tls_total'), 1);
  assert.equal(sample(text, 'quail_messages_received_total{protocol="esmtps"}'), 1);
  assert.equal(sample(text, 'quail_messages_refused_total{stage="rcpt",reason="rcpthosts"}'), 1);
  assert.equal(sample(text, 'quail_messages_refused_total{stage="data",reason="size"}'), 1);
  assert.equal(sample(text, 'quail_messages_refused_total{stage="connection",reason="other"}'), 1);
  assert.equal(sample(text, 'quail_messages_queued_total'), 1);
  assert.equal(sample(text, 'quail_deliveries_total{channel="local",result="delivered"}'), 1);
  assert.equal(sample(text, 'quail_deliveries_total{channel="remote",result="deferred"}'), 1);
  assert.equal(sample(text, 'quail_deliveries_total{channel="remote",result="failed"}'), 1);
  assert.equal(sample(text, 'quail_bounces_total{kind="failure"}'), 1);
  // the local attempt took 2.5 s on the injected clock (buckets are "less than or equal")
  assert.equal(sample(text, 'quail_delivery_duration_seconds_bucket{le="1",channel="local",result="delivered"}'), 0);
  assert.equal(sample(text, 'quail_delivery_duration_seconds_bucket{le="2.5",channel="local",result="delivered"}'), 1);
  assert.equal(sample(text, 'quail_delivery_duration_seconds_sum{channel="local",result="delivered"}'), 2.5);
  assert.equal(sample(text, 'quail_delivery_latency_seconds_count{channel="local"}'), 1);
  assert.equal(sample(text, 'quail_child_restarts_total{process="smtpd"}'), 1);
  assert.equal(sample(text, 'quail_pop3_logins_total{tls="yes"}'), 1);
  assert.equal(sample(text, 'quail_pop3_sessions_total'), 1);
  assert.equal(sample(text, 'quail_directory_lookup_seconds_count{op="rcpt"}'), 1);
  assert.equal(sample(text, 'quail_queue_messages'), 0, 'no queue directory: empty');
  rmSync(root, { recursive: true, force: true });
});

void test('queue size and oldest age come from the ids in queue/env (birth time in base 36), no file opened', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-metrics-'));
  const env = join(root, 'queue', 'env');
  mkdirSync(env, { recursive: true });
  const born = 1_700_000_000_000;
  for (const [ms, body] of [
    [born, 'not json: never parsed'],
    [born + 60_000, ''],
  ] as const)
    writeFileSync(join(env, `${ms.toString(36).padStart(9, '0')}-abcdefghijkl`), body);
  const m = new Metrics(root, () => born + 90_000);
  const { text } = await m.render();
  assert.equal(sample(text, 'quail_queue_messages'), 2);
  assert.equal(sample(text, 'quail_queue_oldest_age_seconds'), 90);
  rmSync(root, { recursive: true, force: true });
});

void test('lookup batches: what the child collects is what root observes; garbage from a child is ignored', () => {
  const sent: unknown[] = [];
  const add = lookupBatcher((b) => sent.push(b));
  add('rcpt', 0.001);
  const seen: Array<[string, number]> = [];
  takeLookupBatch({ type: 'lookups', times: { rcpt: [0.001, 'x'], auth: 'no', sender: [0.5] } }, (op, s) =>
    seen.push([op, s]),
  );
  assert.deepEqual(seen, [
    ['rcpt', 0.001],
    ['sender', 0.5],
  ]);
  takeLookupBatch(null, () => assert.fail('null is no batch'));
  takeLookupBatch({ times: 5 }, () => assert.fail('no lists'));
});
