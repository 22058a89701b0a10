// The send child's parent side (send.ts) with a stand-in child: crash report with stack, restart count, lspawn answers.
// tier: system (needs quail start)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SendChild } from './send.js';
import { waitFor } from '../../test/support/start.js';

const FIXTURE = fileURLToPath(new URL('../../test/support/send-fixture.js', import.meta.url));

void test('send child dies of an exception: logged with its stack, counted, a new one started and its scheduler started again; lspawn refuses a bad request', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-send-restart-'));
  const events: Array<{ name: string; fields: Record<string, unknown> }> = [];
  const log = {
    event: (name: string, fields: Readonly<Record<string, unknown>>): void =>
      void events.push({ name, fields: { ...fields } }),
  };
  const running: number[] = [];
  const account = { name: 'me', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const c = new SendChild({ root, account, log, script: FIXTURE, onRunning: (pid) => running.push(pid) });
  const named = (n: string): Array<Record<string, unknown>> => events.filter((e) => e.name === n).map((e) => e.fields);
  const dump = (): string => events.map((e) => `${e.name} ${JSON.stringify(e.fields)}`).join('\n');
  try {
    await c.open();
    const first = c.pid;
    await c.start();
    // the second child is started again by itself (start() was asked once): it asks for its delivery too
    await waitFor(() => named('send.delivery').length === 2, 20_000, dump);
    for (const d of named('send.delivery')) {
      assert.deepEqual(d, {
        delivery: 1,
        msg: 'fixture',
        result: 'deferral',
        report: 'qmail-lspawn refused the request: msg is not a queue id. (#4.3.0)\n',
      });
    }
    assert.equal(named('lspawn.refused').length, 2);
    const [crash] = named('sendd.error');
    assert.equal(crash?.['pid'], first);
    assert.equal(crash?.['error'], 'fixture boom');
    assert.match(String(crash?.['stack']), /^Error: fixture boom\n\s+at /);
    assert.deepEqual(
      named('sendd.crashed').map((d) => [d['pid'], d['code'], d['restarts'], d['error']]),
      [[first, 70, 1, 'fixture boom']],
    );
    assert.deepEqual(
      named('sendd.started').map((s) => s['restarts']),
      [0, 1],
    );
    assert.equal(c.restarts, 1);
    assert.notEqual(c.pid, first);
    assert.deepEqual(running, [c.pid]);
  } finally {
    await c.stop();
    await c.lspawn.close();
    rmSync(root, { recursive: true, force: true });
  }
  assert.equal(named('sendd.crashed').length, 1, 'a stop is no crash');
});
