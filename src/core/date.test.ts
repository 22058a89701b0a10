// Golden table for rfc5322Date (qmail's date822fmt).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rfc5322Date } from './index.js';

void test('rfc5322Date: golden table (UTC, -0000, day not padded, seconds truncated)', () => {
  const table: Array<[number, string]> = [
    [Date.UTC(2026, 10, 22, 3, 1, 2), '22 Nov 2026 03:01:02 -0000'],
    [Date.UTC(2026, 0, 5, 0, 0, 0), '5 Jan 2026 00:00:00 -0000'],
    [Date.UTC(1999, 11, 31, 23, 59, 59), '31 Dec 1999 23:59:59 -0000'],
    [Date.UTC(2024, 1, 29, 12, 7, 9, 999), '29 Feb 2024 12:07:09 -0000'],
    [1_795_000_000_000, '18 Nov 2026 11:06:40 -0000'],
  ];
  for (const [ms, want] of table) assert.equal(rfc5322Date(new Date(ms)), want);
});
