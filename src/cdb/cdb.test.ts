// cdb tests: golden bytes from qmail-newu, lookups, duplicates, and round-trips with tinycdb's `cdb` tool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCdb, cdbEntries, cdbGet, cdbGetAll, cdbHash, CdbFile, CdbFormatError, writeCdbAtomic } from './index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const TINYCDB = '/usr/bin/cdb';
const haveTool = existsSync(TINYCDB);
const skipTool = haveTool ? false : `${TINYCDB} is missing (install Debian's tinycdb to run the interop tests)`;

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
  const out = buildCdb([[key, data], [b(''), b('')]]);
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
  const db = buildCdb([[b('k'), b('1')], [b('x'), b('')], [b('k'), b('2')], [b(''), b('empty-key')]]);
  assert.deepEqual(cdbGet(db, b('k')), b('1'));
  assert.deepEqual(cdbGetAll(db, b('k')), [b('1'), b('2')]);
  assert.deepEqual(cdbGet(db, b('x')), b(''));
  assert.deepEqual(cdbGet(db, b('')), b('empty-key'));
  assert.equal(cdbGet(db, b('nope')), undefined);
  assert.equal(cdbGet(db, b('k\0')), undefined);
  const empty = buildCdb([]);
  assert.equal(empty.length, 2048);
  assert.equal(cdbGet(empty, b('k')), undefined);
  assert.deepEqual([...cdbEntries(db)].map(([k, d]) => `${k.toString()}=${d.toString()}`), ['k=1', 'x=', 'k=2', '=empty-key']);
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
    assert.throws(() => CdbFile.open(join(dir, 'short')), CdbFormatError);
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
    const f = CdbFile.open(p);
    assert.equal(f.get('a')?.toString(), 'b');
    assert.equal(f.has('c'), false);
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

void test('interop: we read tinycdb\'s file, and the bytes are identical to ours', { skip: skipTool }, () => {
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
