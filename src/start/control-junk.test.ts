// Junk lines of control/virtualdomains and rcpthosts: quail start says each, with its file and line, once at start and
// once at each SIGHUP, and still routes as qmail does.
// tier: system (needs quail start)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupRoot, startProcess, waitFor } from '../../test/support/start.js';

void test('quail start: each junk control line is a quail.warning naming FILE:LINE, once per load (start, SIGHUP)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-control-junk-'));
  setupRoot(root, 'mx.test', [{ domain: 'a.test', boxes: [] }]);
  // line 1 is setupRoot's a.test:a.test
  writeFileSync(join(root, 'control', 'virtualdomains'), 'no colon here\n b.test:b\n', { flag: 'a' });
  writeFileSync(join(root, 'control', 'rcpthosts'), 'c.test:c\n', { flag: 'a' });
  const q = await startProcess(root);
  try {
    const warnings = (): string[] =>
      q
        .log()
        .split('\n')
        .filter((l) => l.includes('quail.warning'));
    const count = (re: RegExp): number => warnings().filter((l) => re.test(l)).length;
    const noColon = /control\/virtualdomains:2\b.*"no colon here\\?" has no \\?":\\?" and is ignored/;
    const spaced = /control\/virtualdomains:3\b.*pattern \\?" b\.test\\?" has a space or tab, so it never matches/;
    const inRcpt = /control\/rcpthosts:\d+ .*entry \\?"c\.test:c\\?" has a \\?":\\?"/;
    await waitFor(() => count(noColon) === 1 && count(spaced) === 1 && count(inRcpt) === 1, 20_000, q.log);
    assert.equal(count(/control\/virtualdomains:1\b/), 0, 'a good line is not reported');
    q.child.kill('SIGHUP');
    await waitFor(() => count(noColon) === 2 && count(spaced) === 2 && count(inRcpt) === 2, 20_000, q.log);
  } finally {
    q.child.kill('SIGTERM');
    await q.exited;
    rmSync(root, { recursive: true, force: true });
  }
});
