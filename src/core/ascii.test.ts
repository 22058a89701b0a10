// qmail's C readings of numbers and dotted IPs (ip.c, scan_ulong), shared by smtpd, remote and users.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digitsModulo, ipScan } from './index.js';

void test('digitsModulo: scan_ulong kept in a byte or a 32-bit id, exact past a double', () => {
  assert.equal(digitsModulo('0', 256), 0);
  assert.equal(digitsModulo('257', 256), 1);
  assert.equal(digitsModulo('4294967296', 4294967296), 0);
  assert.equal(digitsModulo('4294967298', 4294967296), 2);
  const big = '123456789012345678901234567890';
  assert.equal(digitsModulo(big, 4294967296), Number(BigInt(big) % 4294967296n));
});

void test('ipScan: four digit runs of any length, each modulo 256; anything else is no IP', () => {
  assert.equal(ipScan('127.0.0.1'), '127.0.0.1');
  assert.equal(ipScan('127.0.0.0001'), '127.0.0.1');
  assert.equal(ipScan('383.0.0.257'), '127.0.0.1');
  for (const no of ['', '1.2.3', '1.2.3.4.5', '[1.2.3.4]', '1.2.3.x', ' 1.2.3.4', '1..2.3'])
    assert.equal(ipScan(no), null, no);
});
