// The mailbox→office table: where an address goes, which office a message came from, the file's shape.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OfficeFileRouter, tableFile } from './router.js';
import { cameFromOf, parseTable, placeOf, TABLE_FORMAT, type OfficeTable } from './table.js';

const TABLE: OfficeTable = {
  format: TABLE_FORMAT,
  loaded: 1_000_000,
  offices: [
    { name: 'ny', host: '127.0.0.2', port: 25, tls: '', ips: ['127.0.0.2'] },
    { name: 'atl', host: 'mail.atl.example', port: 2525, tls: 'verify', ips: ['192.0.2.3'] },
  ],
  domains: { 'megacorp.example': 'megacorp.example', 'megacorp.test': 'megacorp.example' },
  homes: {
    'nick@megacorp.example': 'ny',
    'alex@megacorp.example': 'atl',
    'solo@megacorp.example': '',
    'gone@megacorp.example': 'den',
  },
};

void test('placeOf: own office, no office, aliases and other domains are here; other offices by name, alias domain and box-ext', () => {
  assert.deepEqual(placeOf(TABLE, 'ny', 'nick@megacorp.example'), { kind: 'here' });
  assert.deepEqual(placeOf(TABLE, 'ny', 'solo@megacorp.example'), { kind: 'here' });
  assert.deepEqual(placeOf(TABLE, 'ny', 'info@megacorp.example'), { kind: 'here' }, 'not a mailbox: local rules');
  assert.deepEqual(placeOf(TABLE, 'ny', 'alex@elsewhere.example'), { kind: 'here' });
  assert.deepEqual(placeOf(TABLE, 'ny', 'postmaster'), { kind: 'here' });
  const atl = { kind: 'office', office: 'atl', host: 'mail.atl.example', port: 2525, tls: 'verify' };
  assert.deepEqual(placeOf(TABLE, 'ny', 'Alex@MEGACORP.example'), atl);
  assert.deepEqual(placeOf(TABLE, 'ny', 'alex@megacorp.test'), atl, 'an alias domain');
  assert.deepEqual(placeOf(TABLE, 'ny', 'alex-lists@megacorp.example'), atl, "vdeliver's box-ext");
  assert.deepEqual(placeOf(TABLE, 'atl', 'alex@megacorp.example'), { kind: 'here' });
  assert.deepEqual(placeOf(TABLE, 'atl', 'nick@megacorp.example'), {
    kind: 'office',
    office: 'ny',
    host: '127.0.0.2',
    port: 25,
    tls: '',
  });
  assert.deepEqual(placeOf(TABLE, 'ny', 'gone@megacorp.example'), {
    kind: 'unknown',
    why: 'its office "den" is not in the offices table',
  });
  // A row's office name with a newline: quoted in the deferral's report, never a line of its own.
  const forged = { ...TABLE, homes: { 'eve@megacorp.example': 'x\n#5.0.0 bounced' } };
  assert.deepEqual(placeOf(forged, 'ny', 'eve@megacorp.example'), {
    kind: 'unknown',
    why: 'its office "x\\n#5.0.0 bounced" is not in the offices table',
  });
});

void test('cameFromOf: SMTP from another office address only', () => {
  assert.equal(cameFromOf(TABLE, 'ny', { origin: 'smtp', ip: '192.0.2.3' }), 'atl');
  assert.equal(cameFromOf(TABLE, 'ny', { origin: 'smtp', ip: '::ffff:192.0.2.3' }), 'atl');
  assert.equal(cameFromOf(TABLE, 'ny', { origin: 'smtp', ip: '127.0.0.2' }), null, 'its own address');
  assert.equal(cameFromOf(TABLE, 'ny', { origin: 'smtp', ip: '198.51.100.1' }), null);
  assert.equal(cameFromOf(TABLE, 'ny', { origin: 'forward', ip: '192.0.2.3' }), null, 'not received over SMTP');
});

void test('parseTable: only a table of this format', () => {
  assert.deepEqual(parseTable(JSON.stringify(TABLE)), TABLE);
  assert.equal(parseTable('{"format":"other"}'), null);
  assert.equal(parseTable('not json'), null);
  assert.equal(parseTable('null'), null);
});

void test('OfficeFileRouter: before a table, virtualdomains addresses wait; then the file answers, re-read when it changes', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-offices-'));
  try {
    const r = new OfficeFileRouter(root, 'ny', new Set(['megacorp.example']));
    assert.equal(r.place('alex@megacorp.example').kind, 'unknown');
    assert.deepEqual(r.place('joe@other.example'), { kind: 'here' });
    assert.equal(r.cameFrom({ origin: 'smtp', ip: '192.0.2.3' }), null);
    mkdirSync(join(root, 'run'));
    writeFileSync(tableFile(root), JSON.stringify(TABLE));
    assert.equal(r.place('alex@megacorp.example').kind, 'office');
    assert.equal(r.cameFrom({ origin: 'smtp', ip: '192.0.2.3' }), 'atl');
    writeFileSync(tableFile(root), JSON.stringify({ ...TABLE, homes: { 'alex@megacorp.example': 'ny' }, loaded: 2 }));
    assert.deepEqual(r.place('alex@megacorp.example'), { kind: 'here' }, 'moved to ny');
    writeFileSync(tableFile(root), 'garbage');
    assert.deepEqual(r.place('alex@megacorp.example'), { kind: 'here' }, 'a bad file keeps the last table');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
