// qmail-tcpto's memory: kept between reads while its file is unchanged, read again when anyone changes it.
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Tcpto, tcptoPath } from './tcpto.js';

void test('tcpto: what another process writes is seen at the next look; its own records count up', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-tcpto-'));
  mkdirSync(join(root, 'run'));
  const path = tcptoPath(root);
  const now = 1_000_000;
  const send = new Tcpto(path, () => now);
  assert.equal(send.skip('192.0.2.1'), false, 'no file: nothing remembered');
  // the send process counts two timeouts: the second makes the address skipped
  send.record('192.0.2.1', true);
  assert.equal(send.read().get('192.0.2.1')?.errors, 1);
  assert.equal(send.skip('192.0.2.1'), false);
  send.record('192.0.2.1', true);
  assert.equal(send.skip('192.0.2.1'), true);
  // another process (`quail remote tcpok`) empties the file in place: seen at once
  assert.equal(new Tcpto(path, () => now).clear(), 1);
  assert.equal(send.skip('192.0.2.1'), false);
  assert.equal(send.read().size, 0);
  // and a file written by someone else is read, whatever was read before
  writeFileSync(path, JSON.stringify({ '192.0.2.9': { errors: 3, last: now } }));
  assert.equal(send.skip('192.0.2.9'), true);
  assert.equal(send.read().get('192.0.2.9')?.errors, 3);
  // what read() returns is not changed by a later record
  const before = send.read();
  send.record('192.0.2.9', false);
  assert.equal(before.get('192.0.2.9')?.errors, 3);
  assert.equal(send.read().has('192.0.2.9'), false);
});

void test('tcpto: the empty file root gives the send process is read once, not at every connection attempt', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-tcpto-'));
  mkdirSync(join(root, 'run'));
  const path = tcptoPath(root);
  writeFileSync(path, ''); // as quail start makes it (src/start/send-side.ts)
  const send = new Tcpto(path, () => 1_000_000);
  for (let i = 0; i < 5; i++) assert.equal(send.skip('192.0.2.1'), false);
  assert.equal(send.reads, 1);
  send.record('192.0.2.1', true); // written: the next look reads it again
  assert.equal(send.read().get('192.0.2.1')?.errors, 1);
  assert.equal(send.skip('192.0.2.1'), false);
  assert.equal(send.reads, 2);
});
