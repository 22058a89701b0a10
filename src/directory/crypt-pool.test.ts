// crypt(3) hashes verified on threads: the same answers as inline, the event loop free meanwhile, the work spread,
// and a lost thread's jobs computed inline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CryptThreads } from './crypt-pool.js';
import { recomputeCrypt } from './crypt.js';

/** [password, hash] made with `openssl passwd` (-6, -5 with rounds, -1) and, for bcrypt and DES, libxcrypt. */
const VECTORS: ReadonlyArray<readonly [string, string]> = [
  ['hunter2', '$6$Zq8vQ2pLr$TsPfYUWhrm1DHwlrkPYuysTZMyeOXqNsRWUzpaR1Elj5GgSa3KcyKNRdohRhbPjeRUd4mZQhTE.RHGpeSu3Q7/'],
  ['pässwörd', '$5$rounds=12000$s4ltS4lt$hXcrhjePSNuakWSw8qxcii5CGvW3i54nipaSLEtzRp8'],
  ['letmein', '$1$xYz12$UQZLLEKbtruYUeIq3DNpB.'],
  ['pw', '$2b$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q'],
  ['secret', 'abNANd1rDfiNc'],
];
/** 200,000 rounds: long enough that a thread is still at it when the test takes the thread away. */
const SLOW = [
  'slow',
  '$6$rounds=200000$slowsalt$IucP1mXRE83zKUQy87o4gfUp.OsRI6Pr2n0KK0aaSLpRDfDj1DB0ydSiwcJCL1Yccx.BKN9cWS.mhPkNrZFZI1',
] as const;

/** A pool of `size` threads for `body`, its threads stopped after. */
async function withThreads(size: number, body: (pool: CryptThreads) => Promise<void>): Promise<void> {
  const pool = new CryptThreads();
  pool.use(size);
  try {
    await body(pool);
  } finally {
    await pool.stop();
  }
}

/** Whether a setImmediate queued before the recomputation ran before its answer came (the event loop turned). */
async function loopTurned(pool: CryptThreads, password: string, hash: string): Promise<[string | null, boolean]> {
  let turned = false;
  setImmediate(() => (turned = true));
  const out = await pool.recompute(password, hash, recomputeCrypt);
  return [out, turned];
}

void test('crypt threads: every scheme gives the hash it was made with, on a thread, while the event loop turns', () =>
  withThreads(2, async (pool) => {
    for (const [pw, hash] of VECTORS) {
      const [out, turned] = await loopTurned(pool, pw, hash);
      assert.equal(out, hash, `${pw} against ${hash}`);
      // MD5-crypt and DES take microseconds: the thread's answer can be read in the same turn as the request, so
      // only the schemes that take milliseconds show the loop turning (pool.threaded below counts every one)
      if (!hash.startsWith('$1$') && !hash.startsWith('ab'))
        assert.equal(turned, true, `the event loop ran while ${hash} was computed`);
      assert.notEqual(await pool.recompute(`Q${pw}`, hash, recomputeCrypt), hash);
    }
    assert.equal(await pool.recompute('x', '$9$unknown', recomputeCrypt), null, 'an unknown scheme: null, as inline');
    assert.equal(pool.threaded, VECTORS.length * 2 + 1);
    assert.equal(pool.fellBack, 0);
  }));

void test('crypt threads off: computed inline, the event loop waits (what the threaded test tells apart)', async () => {
  const pool = new CryptThreads();
  pool.use(0);
  const [pw, hash] = VECTORS[0] as readonly [string, string];
  const [out, turned] = await loopTurned(pool, pw, hash);
  assert.equal(out, hash);
  assert.equal(turned, false);
  assert.equal(pool.threaded, 0);
});

void test('crypt threads: logins at once are spread over the threads', () =>
  withThreads(2, async (pool) => {
    const [pw, hash] = VECTORS[1] as readonly [string, string];
    const outs = await Promise.all([1, 2, 3, 4].map(() => pool.recompute(pw, hash, recomputeCrypt)));
    assert.deepEqual(outs, [hash, hash, hash, hash]);
    assert.equal(pool.threadsUsed, 2);
  }));

void test('crypt threads: a thread lost in the middle of a job does not lose the login; the next job gets a new thread', () =>
  withThreads(1, async (pool) => {
    const pending = pool.recompute(SLOW[0], SLOW[1], recomputeCrypt);
    await new Promise((r) => setTimeout(r, 20));
    await pool.stop();
    assert.equal(await pending, SLOW[1], 'computed inline instead');
    assert.equal(pool.fellBack, 1);
    const [pw, hash] = VECTORS[0] as readonly [string, string];
    const [out, turned] = await loopTurned(pool, pw, hash);
    assert.deepEqual([out, turned], [hash, true]);
    assert.equal(pool.threaded, 1);
  }));

void test('crypt threads: threads that cannot start cost three logins a thread each, then the pool computes inline', async () => {
  const pool = new CryptThreads(new URL('./no-such-crypt-worker.js', import.meta.url));
  pool.use(2);
  const [pw, hash] = VECTORS[2] as readonly [string, string];
  for (let n = 1; n <= 5; n++) assert.equal(await pool.recompute(pw, hash, recomputeCrypt), hash, `login ${n}`);
  assert.equal(pool.enabled, false, 'off after three threads lost before their first answer');
  assert.deepEqual([pool.threaded, pool.fellBack], [0, 3]);
});
