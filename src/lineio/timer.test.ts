// Reader's idle timer: one timer serves every wait of chunk(). Alone in its file, so that no other test's timers are
// counted with process.getActiveResourcesInfo().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Reader } from './reader.js';

void test(
  "chunk's one timer: a shorter wait after a longer one times out on time, a longer one after a shorter is not cut short, and nothing keeps the process alive between waits",
  { timeout: 20_000 },
  async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    const baseline = timers();
    const s = new PassThrough();
    const r = new Reader(s);
    s.write('a');
    assert.equal(String(await r.chunk(50)), 'a', 'data already there: no wait');
    const first = r.chunk(10_000); // arms the timer 10 s ahead
    s.write('b');
    assert.equal(String(await first), 'b');
    const t0 = Date.now();
    assert.equal(await r.chunk(40), 'timeout', 'a shorter wait re-arms the timer sooner');
    assert.ok(Date.now() - t0 < 5_000, 'not the 10 s of the earlier wait');

    const quick = r.chunk(60); // arms the timer 60 ms ahead; data comes first
    setTimeout(() => s.write('c'), 10);
    assert.equal(String(await quick), 'c');
    const t1 = Date.now();
    assert.equal(await r.chunk(300), 'timeout', 'the earlier timer fires first and is armed again for the rest');
    assert.ok(Date.now() - t1 >= 250, "not cut short at the earlier wait's 60 ms");

    const idle = r.chunk(10_000);
    assert.equal(timers(), baseline + 1, 'a wait keeps the process alive');
    s.write('d');
    assert.equal(String(await idle), 'd');
    const between = process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    assert.equal(between, baseline, "between waits the timer is unref'd");
    s.end();
    assert.equal(await r.chunk(10_000), 'eof');
  },
);
