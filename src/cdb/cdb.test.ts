// cdb tests: golden bytes from qmail-newu, lookups, duplicates, round-trips with tinycdb's `cdb` tool, and the
// descriptor reader (CdbReader) agreeing with the in-memory lookups, damaged files included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildCdb,
  cdbEntries,
  cdbGet,
  cdbGetAll,
  cdbHash,
  CdbFormatError,
  CdbReader,
  writeCdbAtomic,
} from './index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const TINYCDB = '/usr/bin/cdb';
const haveTool = existsSync(TINYCDB);
// Skipped without the tool on a developer's machine; in CI (QUAIL_REQUIRE_TOOLS=1, set by .ci/run) a missing tool fails.
const skipTool =
  haveTool || process.env['QUAIL_REQUIRE_TOOLS'] === '1'
    ? false
    : `${TINYCDB} is missing (install Debian's tinycdb to run the interop tests)`;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'quail-cdb-'));
}

/** Native tinycdb input format: +klen,dlen:key->data\n ... \n */
function tinyInput(records: Array<[Buffer, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, d] of records) parts.push(b(`+${k.length},${d.length}:`), k, b('->'), d, b('\n'));
  parts.push(b('\n'));
  return Buffer.concat(parts);
}

void test('hash: djb hash values', () => {
  assert.equal(cdbHash(b('')), 5381);
  assert.equal(cdbHash(b('a')), ((5381 * 33) ^ 0x61) >>> 0);
  // The slot qmail-newu wrote for `!joe.shmoe\0` in newu-002 holds hash 0xe9e0d776.
  assert.equal(cdbHash(b('!joe.shmoe\0')), 0xe9e0d776);
});

void test('golden: byte-identical to qmail-newu for one simple assignment (newu-002)', () => {
  const key = b('!joe.shmoe\0');
  const data = b('joe\x00503\x0078\x00/home/joe\x00\x00');
  const out = buildCdb([
    [key, data],
    [b(''), b('')],
  ]);
  assert.equal(out.length, 2129);
  // Records start at 2048: lengths, key, data.
  assert.equal(out.subarray(2048, 2056).toString('hex'), '0b00000016000000');
  // The tail of the file as qmail-newu wrote it: the empty record, then tables 0x05 and 0x76 (two slots each).
  assert.equal(
    out.subarray(2048 + 8 + 11 + 22).toString('hex'),
    '0000000000000000' + '0000000000000000' + '0515000029080000' + '0000000000000000' + '76d7e0e900080000',
  );
  // Table headers of the two used tables (h mod 256 = 0x05 and 0x76).
  assert.equal(out.readUInt32LE(0x05 * 8 + 4), 2);
  assert.equal(out.readUInt32LE(0x76 * 8 + 4), 2);
  assert.equal(out.readUInt32LE(0), 2097); // table 0 starts after the records
  assert.equal(out.readUInt32LE(255 * 8), 2129);
});

void test('lookups: first value, all values in order, missing keys, empty db', () => {
  const db = buildCdb([
    [b('k'), b('1')],
    [b('x'), b('')],
    [b('k'), b('2')],
    [b(''), b('empty-key')],
  ]);
  assert.deepEqual(cdbGet(db, b('k')), b('1'));
  assert.deepEqual(cdbGetAll(db, b('k')), [b('1'), b('2')]);
  assert.deepEqual(cdbGet(db, b('x')), b(''));
  assert.deepEqual(cdbGet(db, b('')), b('empty-key'));
  assert.equal(cdbGet(db, b('nope')), undefined);
  assert.equal(cdbGet(db, b('k\0')), undefined);
  const empty = buildCdb([]);
  assert.equal(empty.length, 2048);
  assert.equal(cdbGet(empty, b('k')), undefined);
  assert.deepEqual(
    [...cdbEntries(db)].map(([k, d]) => `${k.toString()}=${d.toString()}`),
    ['k=1', 'x=', 'k=2', '=empty-key'],
  );
});

void test('many records with colliding tables round-trip', () => {
  const recs: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i < 3000; i++) recs.push([b(`key${i}`), b(`value${i}`)]);
  const db = buildCdb(recs);
  for (const [k, d] of recs) assert.deepEqual(cdbGet(db, k), d);
});

void test('truncated file is a CdbFormatError', () => {
  const db = buildCdb([[b('k'), b('v')]]);
  assert.throws(() => cdbGet(db.subarray(0, 2050), b('k')), CdbFormatError);
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'short'), 'abc');
    assert.throws(() => CdbReader.open(join(dir, 'short')), CdbFormatError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('writeCdbAtomic: installs the file with its mode, leaves no tmp', () => {
  const dir = tmp();
  try {
    const p = join(dir, 'x.cdb');
    writeFileSync(p, 'old');
    writeCdbAtomic(p, [[b('a'), b('b')]]);
    assert.equal(existsSync(`${p}.tmp`), false);
    assert.equal(statSync(p).mode & 0o777, 0o644);
    const f = CdbReader.open(p);
    assert.equal(f.get('a')?.toString(), 'b');
    assert.equal(f.has('c'), false);
    f.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const SAMPLE: Array<[Buffer, Buffer]> = [
  [b('!joe\0'), b('joe\x00503\x0078\x00/home/joe\x00\x00')],
  [b('!sales-'), b('sales\x00504\x0078\x00/home/sales\x00-\x00')],
  [b('dup'), b('one')],
  [b('dup'), b('two')],
  [b('bin\n\xff'), b('\x00\x01\x02')],
  [b(''), b('-')],
];

void test('interop: tinycdb reads our file (cdb -q, cdb -d)', { skip: skipTool }, () => {
  const dir = tmp();
  try {
    const p = join(dir, 'ours.cdb');
    writeFileSync(p, buildCdb(SAMPLE));
    assert.equal(execFileSync(TINYCDB, ['-q', p, 'dup']).toString(), 'onetwo');
    assert.equal(execFileSync(TINYCDB, ['-q', '-n', '2', p, 'dup']).toString(), 'two');
    assert.deepEqual(execFileSync(TINYCDB, ['-q', p, '!sales-']), SAMPLE[1]?.[1]);
    assert.deepEqual(execFileSync(TINYCDB, ['-d', p]), tinyInput(SAMPLE));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test("interop: we read tinycdb's file, and the bytes are identical to ours", { skip: skipTool }, () => {
  const dir = tmp();
  try {
    const p = join(dir, 'theirs.cdb');
    execFileSync(TINYCDB, ['-c', p], { input: tinyInput(SAMPLE) });
    const theirs = readFileSync(p);
    for (const [k] of SAMPLE) assert.deepEqual(cdbGet(theirs, k), SAMPLE.find(([k2]) => k2.equals(k))?.[1]);
    assert.deepEqual(cdbGetAll(theirs, b('dup')), [b('one'), b('two')]);
    assert.deepEqual([...cdbEntries(theirs)], SAMPLE);
    assert.equal(theirs.toString('hex'), buildCdb(SAMPLE).toString('hex'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Keys of 3 characters whose cdb hashes are equal (djb's hash collides easily): [a, b] pairs. */
function sameHashPairs(count: number): Array<[string, string]> {
  const seen = new Map<number, string>();
  const out: Array<[string, string]> = [];
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  for (const x of alphabet)
    for (const y of alphabet)
      for (const z of alphabet) {
        const k = x + y + z;
        const h = cdbHash(b(k));
        const other = seen.get(h);
        if (other === undefined) seen.set(h, k);
        else if (out.length < count) out.push([other, k]);
      }
  return out;
}

/**
 * A generated database: 4,000 domain-like keys, duplicates, an empty key, long values, and pairs of keys with
 * the same full hash (one of each pair stored, the other a probe that must miss after comparing the key).
 */
function generated(): { records: Array<[Buffer, Buffer]>; probes: Buffer[] } {
  const records: Array<[Buffer, Buffer]> = [];
  const probes: Buffer[] = [];
  for (let i = 0; i < 4000; i++) {
    const k = b(`d${String(i).padStart(7, '0')}.bench.test`);
    records.push([k, i % 3 === 0 ? b('') : b(`value ${i} `.repeat(i % 7))]);
    probes.push(k, b(`missing${i}.test`));
  }
  for (let i = 0; i < 50; i++) records.push([b(`dup${i % 10}`), b(`copy ${i}`)]);
  records.push([b(''), b('the empty key')]);
  records.push([b('bin\0\xff\n'), Buffer.alloc(3000, 0xab)]);
  for (const [kept, other] of sameHashPairs(40)) {
    records.push([b(kept), b(`kept ${kept}`)]);
    probes.push(b(kept), b(other));
  }
  for (let i = 0; i < 10; i++) probes.push(b(`dup${i}`));
  probes.push(b(''), b('bin\0\xff\n'), b('bin\0\xff'));
  return { records, probes };
}

/** What a lookup gives, or the name of the error it throws. */
function outcome<T>(fn: () => T): T | string {
  try {
    return fn();
  } catch (err) {
    return err instanceof CdbFormatError ? 'CdbFormatError' : `other: ${String(err)}`;
  }
}

void test('strings are written as their Latin-1 bytes: the same file as from Buffers', () => {
  const strings: Array<[string, string]> = [
    ['k\xe9y', 'v\0al\xff'],
    ['', ''],
    ['long', 'x'.repeat(500)],
    ['\u0141', 'low byte'],
  ];
  const bytes = strings.map(([k, d]): [Buffer, Buffer] => [Buffer.from(k, 'latin1'), Buffer.from(d, 'latin1')]);
  assert.equal(buildCdb(strings).toString('hex'), buildCdb(bytes).toString('hex'));
  assert.deepEqual(cdbGet(buildCdb(strings), b('k\xe9y')), b('v\0al\xff'));
  // A generator is read once: the records are taken into a list before the two passes.
  assert.equal(
    buildCdb(
      (function* () {
        yield* strings;
      })(),
    ).toString('hex'),
    buildCdb(bytes).toString('hex'),
  );
});

void test(
  'interop: tinycdb makes the same bytes for a generated set (4,000 keys, duplicates, same-hash keys)',
  { skip: skipTool },
  () => {
    const { records } = generated();
    const dir = tmp();
    try {
      const p = join(dir, 'theirs.cdb');
      execFileSync(TINYCDB, ['-c', p], { input: tinyInput(records) });
      assert.ok(readFileSync(p).equals(buildCdb(records)), 'tinycdb and buildCdb differ');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

void test('CdbReader agrees with the in-memory lookups: every key, missing keys, same-hash keys, duplicates', () => {
  const { records, probes } = generated();
  const db = buildCdb(records);
  const dir = tmp();
  try {
    const p = join(dir, 'g.cdb');
    writeFileSync(p, db);
    const r = CdbReader.open(p);
    try {
      let hits = 0;
      for (const k of probes) {
        const all = cdbGetAll(db, k);
        assert.deepEqual(r.getAll(k), all, k.toString('latin1'));
        assert.deepEqual(r.get(k), all[0], k.toString('latin1'));
        assert.equal(r.has(k), all.length > 0, k.toString('latin1'));
        if (all.length > 0) hits++;
      }
      assert.ok(hits > 4000 && hits < probes.length, `${hits} of ${probes.length} probes found`);
      assert.deepEqual(
        r.getAll('dup3').map((v) => v.toString()),
        ['copy 3', 'copy 13', 'copy 23', 'copy 33', 'copy 43'],
      );
      assert.equal(r.get('d0000008.bench.test')?.toString(), 'value 8 ');
    } finally {
      r.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('CdbReader on a truncated file: CdbFormatError exactly where the in-memory lookup has one', () => {
  const { records, probes } = generated();
  const db = buildCdb(records);
  const tables = db.readUInt32LE(0);
  const dir = tmp();
  try {
    const p = join(dir, 't.cdb');
    for (const len of [0, 7, 2047]) {
      writeFileSync(p, db.subarray(0, len));
      assert.throws(() => CdbReader.open(p), CdbFormatError, `length ${len}`);
    }
    let damaged = 0;
    for (const len of [
      2048,
      2052,
      5000,
      Math.floor(tables / 2),
      tables - 1,
      tables,
      tables + 4,
      tables + 1000,
      db.length - 12,
      db.length - 1,
    ]) {
      const cut = db.subarray(0, len);
      writeFileSync(p, cut);
      const r = CdbReader.open(p);
      try {
        for (const k of probes) {
          const mem = outcome(() => cdbGetAll(cut, k));
          assert.deepEqual(
            outcome(() => r.getAll(k)),
            mem,
            `length ${len}, key ${k.toString('latin1')}`,
          );
          if (mem === 'CdbFormatError') damaged++;
          // get and has stop at the first hit; when the whole walk is clean they agree with it.
          if (typeof mem !== 'string') {
            assert.deepEqual(r.get(k), mem[0]);
            assert.equal(r.has(k), mem.length > 0);
          }
        }
      } finally {
        r.close();
      }
    }
    assert.ok(damaged > 1000, `only ${damaged} lookups met the damage`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('CdbReader keeps the file it opened when a new one is installed; close ends it', () => {
  const dir = tmp();
  try {
    const p = join(dir, 'x.cdb');
    writeCdbAtomic(p, [['old.test', '']]);
    const r = CdbReader.open(p);
    writeCdbAtomic(p, [['new.test', '']]);
    assert.equal(r.has('old.test'), true);
    assert.equal(r.has('new.test'), false);
    r.close();
    r.close();
    assert.throws(() => r.has('old.test'), /closed reader/);
    const fresh = CdbReader.open(p);
    assert.equal(fresh.has('new.test'), true);
    fresh.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('CdbReader.fromFd takes the descriptor over: a failure closes it too', () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'short'), 'abc');
    const fd = openSync(join(dir, 'short'), 'r');
    assert.throws(() => CdbReader.fromFd(fd), CdbFormatError);
    assert.throws(() => fstatSync(fd), { code: 'EBADF' });
    const dfd = openSync(dir, 'r'); // a directory opens, then reading it fails
    assert.throws(() => CdbReader.fromFd(dfd), { code: 'EISDIR' });
    assert.throws(() => fstatSync(dfd), { code: 'EBADF' });
    assert.throws(() => CdbReader.open(join(dir, 'nothing')), { code: 'ENOENT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
