// The pop3 benchmark's harness works: every RETR round reads the whole mailbox, each server's CPU per RETR is read from
// its own process tree, and Dovecot, beside quail on the same Maildir, leaves the message files as they were.
// tier: system (needs dovecot-pop3d for the comparison; quail alone otherwise)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasDovecotPop3 } from '../test/support/dovecot.js';
import { pop3Section } from './pop3.js';
import type { BenchContext, BenchRow } from './types.js';

/** Enough RETRs (three rounds of N) for the CPU of each round to span many 10 ms ticks. */
const N = 2000;

const withDovecot = hasDovecotPop3();
/** The section starts Dovecot when it is installed, and Dovecot's POP3 switches to the mailbox's account. */
const skip = withDovecot && process.getuid?.() !== 0 ? 'Dovecot is installed, and starting it needs root' : false;

void test(
  `pop3 section: RETR rounds and CPU per RETR${withDovecot ? ', beside Dovecot' : ' (Dovecot not installed)'}`,
  { skip },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quail-bench-pop3-'));
    chmodSync(dir, 0o711);
    const ctx: BenchContext = {
      workDir: dir,
      n: () => N,
      caseBudgetMs: 3_000,
      fsyncRate: 0,
      progress: () => undefined,
    };
    try {
      const rows = await pop3Section.run(ctx);
      const row = (name: string): BenchRow => {
        const r = rows.find((x) => x.name === name);
        assert.ok(r, `no row "${name}" in ${rows.map((x) => x.name).join(' | ')}`);
        return r;
      };
      for (const server of withDovecot ? ['quail', 'dovecot'] : ['quail']) {
        // three rounds after the warm-up, each the whole mailbox
        assert.ok(row(`${server}: RETR ${3 * N} x 4 KiB`).value > 0);
        // the CPU of the server's own processes: a wrong process tree reads nothing (or the bench's own CPU)
        const cpu = row(`${server}: server CPU per RETR`);
        assert.ok(cpu.value > 0 && cpu.value < 5_000, `${server}: ${cpu.value} us per RETR`);
        assert.equal(row(`${server}: login + STAT, ${N} msgs`).unit, 'ms');
      }
      if (withDovecot) {
        assert.match(row('quail / dovecot').note ?? '', /RETR MB\/s [0-9.]+x, CPU per RETR [0-9.]+x$/);
        // Dovecot did not mark what it retrieved \Seen (a rename in cur/ that every later session would meet)
        const cur = readdirSync(join(dir, 'root', 'domains', 'example.com', 'joe', 'Maildir', 'cur'));
        assert.equal(cur.length, N);
        assert.deepEqual(
          cur.filter((f) => !f.endsWith(':2,')),
          [],
        );
      } else assert.ok(rows.some((r) => r.name === 'dovecot: not installed'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
