// loadPolicy across sessions: the rcpthosts set kept between sessions follows every change of the file.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Control, ControlFileCache } from '../control/index.js';
import { loadPolicy } from './policy.js';

void test('rcpthosts: each session sees the file as it is, through new snapshots and the file cache', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-policy-'));
  try {
    mkdirSync(join(root, 'control'));
    writeFileSync(join(root, 'control', 'me'), 'mx.test\n');
    const cache = new ControlFileCache(root);
    const allowed = (control: Control, address: string): boolean => {
      const r = loadPolicy(control, {}, () => false);
      assert.ok(r.ok);
      try {
        return r.policy.rcptAllowed(address);
      } finally {
        r.policy.close();
      }
    };
    for (const snapshot of [() => new Control(root), () => cache.snapshot()]) {
      writeFileSync(join(root, 'control', 'rcpthosts'), 'A.test\n');
      assert.equal(allowed(snapshot(), 'x@a.test'), true);
      assert.equal(allowed(snapshot(), 'x@b.test'), false);
      writeFileSync(join(root, 'control', 'rcpthosts'), 'b.test\n');
      assert.equal(allowed(snapshot(), 'x@a.test'), false, 'the kept set of the old text is not used');
      assert.equal(allowed(snapshot(), 'x@b.test'), true);
      rmSync(join(root, 'control', 'rcpthosts'));
      assert.equal(allowed(snapshot(), 'x@c.test'), true, 'no rcpthosts: every domain');
    }
    const none = loadPolicy(new Control(root), { QUAIL_RCPTHOSTS: 'none' }, () => false);
    assert.ok(none.ok);
    assert.equal(none.policy.rcptAllowed('x@c.test'), false, 'rcpthosts=none: no domain');
    none.policy.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
