// RCPT against control/morercpthosts.cdb probed through a descriptor: hits, misses, damage and unreadable files
// (qmail's 421), qmail's "no rcpthosts: never opened", and no descriptor left open after a session.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCdb } from '../cdb/index.js';
import { harness, talk } from '../../test/support/smtpd.js';
import { waitUntil } from '../../test/support/wait.js';

const REMOTE = { TCPREMOTEIP: '192.0.2.9', TCPLOCALHOST: 'mx.local.test' };
const CONTROLS = '421 unable to read controls (#4.3.0)\r\n';

/** morercpthosts.cdb as newmrh writes it: lowercased hosts, empty values; padded with many other domains. */
function mrh(hosts: readonly string[]): Buffer {
  const all = [...hosts];
  for (let i = 0; i < 2000; i++) all.push(`d${i}.other.test`);
  return buildCdb(all.map((h): [string, string] => [h, '']));
}

/** One session: HELO, MAIL, one RCPT per address, QUIT; returns the RCPT reply codes (or the whole text). */
async function rcpts(port: number, addresses: readonly string[]): Promise<{ codes: number[]; out: string }> {
  const out = await talk(
    port,
    `HELO c\r\nMAIL FROM:<a@b.test>\r\n${addresses.map((a) => `RCPT TO:<${a}>\r\n`).join('')}QUIT\r\n`,
  );
  const codes = out
    .split('\r\n')
    .slice(3, 3 + addresses.length)
    .map((l) => Number(l.slice(0, 3)));
  return { codes, out };
}

void test('morercpthosts.cdb: its hosts and .suffixes are accepted, any case; others 553', async () => {
  const h = await harness({
    env: REMOTE,
    control: { 'morercpthosts.cdb': mrh(['more.test', '.sub.test']).toString('latin1') },
  });
  try {
    const cases: Array<[string, number]> = [
      ['joe@more.test', 250],
      ['joe@MORE.Test', 250],
      ['joe@x.sub.test', 250],
      ['joe@a.b.sub.test', 250],
      ['joe@sub.test', 553],
      ['joe@xmore.test', 553],
      ['joe@local.test', 250],
      ['joe@elsewhere.test', 553],
      ['joe@d7.other.test', 250],
    ];
    const { codes, out } = await rcpts(
      h.port,
      cases.map(([a]) => a),
    );
    assert.deepEqual(
      codes,
      cases.map(([, c]) => c),
      out,
    );
  } finally {
    await h.close();
  }
});

void test('morercpthosts.cdb shorter than its header, or a directory: 421 at connect', async () => {
  for (const how of ['short', 'dir'] as const) {
    const h = await harness({ env: REMOTE });
    try {
      const p = join(h.root, 'control', 'morercpthosts.cdb');
      if (how === 'short') writeFileSync(p, 'abc');
      else mkdirSync(p);
      assert.equal(await talk(h.port, 'HELO c\r\nQUIT\r\n'), CONTROLS, how);
    } finally {
      await h.close();
    }
  }
});

void test('morercpthosts.cdb cut inside its tables: 421 at the RCPT that meets the damage, as qmail-smtpd', async () => {
  const db = mrh(['more.test']);
  const cut = db.subarray(0, db.readUInt32LE(0)); // header and records, no hash table
  const h = await harness({ env: REMOTE, control: { 'morercpthosts.cdb': cut.toString('latin1') } });
  try {
    const out = await talk(
      h.port,
      'HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@local.test>\r\nRCPT TO:<joe@more.test>\r\nRCPT TO:<x@local.test>\r\n',
    );
    assert.match(out, /^220 [^\r]*\r\n250 [^\r]*\r\n250 ok\r\n250 ok\r\n421 unable to read controls \(#4\.3\.0\)\r\n$/);
  } finally {
    await h.close();
  }
});

void test('no rcpthosts: every domain accepted and morercpthosts.cdb never opened (a broken one does no harm)', async () => {
  const h = await harness({ env: REMOTE });
  try {
    rmSync(join(h.root, 'control', 'rcpthosts'));
    mkdirSync(join(h.root, 'control', 'morercpthosts.cdb'));
    const { codes, out } = await rcpts(h.port, ['joe@anywhere.test']);
    assert.deepEqual(codes, [250], out);
  } finally {
    await h.close();
  }
});

void test('missing morercpthosts.cdb: rcpthosts alone decides', async () => {
  const h = await harness({ env: REMOTE });
  try {
    const { codes, out } = await rcpts(h.port, ['joe@local.test', 'joe@more.test']);
    assert.deepEqual(codes, [250, 553], out);
  } finally {
    await h.close();
  }
});

void test(
  'every session closes its morercpthosts.cdb descriptor',
  { skip: process.platform !== 'linux' && 'needs /proc/self/fd' },
  async () => {
    const h = await harness({ env: REMOTE, control: { 'morercpthosts.cdb': mrh(['more.test']).toString('latin1') } });
    const open = (): number => readdirSync('/proc/self/fd').length;
    try {
      await rcpts(h.port, ['joe@more.test']); // warm up: whatever the first session opens for good
      const before = open();
      for (let i = 0; i < 20; i++) {
        const { codes } = await rcpts(h.port, ['joe@more.test', 'joe@elsewhere.test']);
        assert.deepEqual(codes, [250, 553]);
      }
      await talk(h.port, 'HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@more.test>\r\n'); // ends by EOF
      await waitUntil(() => open() <= before, 5000, 20);
      assert.equal(open(), before);
    } finally {
      await h.close();
    }
  },
);
