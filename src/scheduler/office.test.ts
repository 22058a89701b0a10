// The office channel (issue 16) in the scheduler: a real queue, a scripted router, scripted deliverers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OfficePlace, OfficeRouter } from './types.js';
import { makeWorld } from '../../test/support/scheduler.js';

const ATL: OfficePlace = { kind: 'office', office: 'atl', host: '127.0.0.3', port: 2525, tls: '' };

/** A router over a table the test changes: address → place; messages from `from` IPs came from office `ny`. */
function router(table: Map<string, OfficePlace>): OfficeRouter {
  return {
    place: (a) => table.get(a.toLowerCase()) ?? { kind: 'here' },
    cameFrom: (meta) => (meta['origin'] === 'smtp' && meta['ip'] === '127.0.0.2' ? 'ny' : null),
  };
}

void test('office channel: another office mailbox goes by SMTP to its office, as an smtproutes line for it alone', async () => {
  const table = new Map<string, OfficePlace>([['alex@local.test', ATL]]);
  const w = await makeWorld({ offices: router(table) });
  try {
    await w.scheduler.start();
    const id = await w.inject('nancy@local.test', ['alex@local.test', 'nick@local.test']);
    await w.scheduler.runUntilIdle();
    assert.equal(w.remoteJobs.length, 1);
    const job = w.remoteJobs[0];
    assert.equal(job?.recipient, 'alex@local.test');
    assert.equal(job?.via, 'office:atl');
    assert.equal(job?.policy?.routes?.get('')?.value, '127.0.0.3:2525');
    assert.equal(job?.policy?.tlsdestinations, undefined, 'no TLS requirement: STARTTLS when offered');
    assert.deepEqual(
      w.localJobs.map((j) => j.local),
      ['nick'],
      'only the own office mailbox is delivered here',
    );
    assert.equal(await w.queue.read(id), undefined, 'both done');
    assert.ok(w.logger.has('start', { channel: 'office', to: 'alex@local.test' }));
  } finally {
    await w.close();
  }
});

void test('office channel: a TLS requirement becomes the job tlsdestinations; the report says which office', async () => {
  const table = new Map<string, OfficePlace>([['alex@local.test', { ...ATL, tls: 'verify' }]]);
  const w = await makeWorld({
    offices: router(table),
    remote: () => ({ result: 'deferral', report: "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n" }),
  });
  try {
    await w.scheduler.start();
    const id = await w.inject('nancy@local.test', ['alex@local.test']);
    await w.scheduler.runUntilIdle();
    assert.equal(w.remoteJobs[0]?.policy?.tlsdestinations?.get('')?.value, 'verify');
    const r = (await w.queue.read(id))?.recipients[0];
    assert.equal(r?.status, 'pending');
    assert.match(r?.lastReport ?? '', /^Office atl \(127\.0\.0\.3:2525\): Sorry, I wasn't able/);
  } finally {
    await w.close();
  }
});

void test('office channel: mail that came from another office is never passed on: it was accepted here while the mailbox lived here, so it is delivered here (the move carries it)', async () => {
  const table = new Map<string, OfficePlace>([['alex@local.test', ATL]]);
  const w = await makeWorld({ offices: router(table) });
  try {
    await w.scheduler.start();
    const id = await w.queue.inject({
      sender: 'nancy@local.test',
      recipients: ['alex@local.test'],
      data: Buffer.from('Subject: x\n\nx\n'),
      injector: { kind: 'network' },
      meta: { origin: 'smtp', ip: '127.0.0.2' },
    });
    await w.scheduler.runUntilIdle();
    assert.equal(w.remoteJobs.length, 0, 'no second hop');
    assert.deepEqual(
      w.localJobs.map((j) => j.local),
      ['alex'],
    );
    assert.equal(await w.queue.read(id), undefined);
    // The same mailbox, a message that did not come from an office: passed on to the mailbox's office.
    await w.inject('nancy@local.test', ['alex@local.test']);
    await w.scheduler.runUntilIdle();
    assert.equal(w.remoteJobs.length, 1);
    assert.equal(w.localJobs.length, 1);
  } finally {
    await w.close();
  }
});

void test('office channel: an office that cannot be told yet defers (never a bounce), and delivers once it can', async () => {
  const table = new Map<string, OfficePlace>([['alex@local.test', { kind: 'unknown', why: 'no table yet' }]]);
  const w = await makeWorld({ offices: router(table) });
  try {
    await w.scheduler.start();
    const id = await w.inject('nancy@local.test', ['alex@local.test']);
    await w.scheduler.runUntilIdle();
    const r = (await w.queue.read(id))?.recipients[0];
    assert.equal(r?.channel, 'office');
    assert.equal(r?.lastReport, 'Unable to tell which office holds alex@local.test: no table yet (#4.3.0)\n');
    assert.equal((await w.byOrigin('bounce')).length, 0);
    table.set('alex@local.test', ATL);
    w.scheduler.flush();
    await w.scheduler.runUntilIdle();
    assert.equal(w.remoteJobs[0]?.recipient, 'alex@local.test');
    assert.equal(await w.queue.read(id), undefined);
  } finally {
    await w.close();
  }
});
