// `npm run bench`: machine facts, this disk's fsync rate, then every registered section as one table. No assertions.
//
// Environment: QUAIL_BENCH_N (messages per case, default per section, e.g. 2000), QUAIL_BENCH_BUDGET (seconds
// per case, default 20, so the default run stays under two minutes), QUAIL_BENCH_DIR (where the temporary
// files go, default the system temp dir: put it on the disk the queue will live on), QUAIL_BENCH_ONLY
// (run only sections whose name contains this text), QUAIL_BENCH_CONTROL (`name=value ...`: control files written
// into every quail root of the run, for A/B runs such as `smtpdprocesses=1`), QUAIL_BENCH_WARMUP (versus: messages
// each server gets before the measured ones, default 1000), QUAIL_BENCH_VIA (versus: `assign` or `directory`).
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpus, freemem, hostname, release, tmpdir, totalmem, type as osType } from 'node:os';
import { join, resolve } from 'node:path';
import { errText } from '../src/core/index.js';
import { measureFsync } from './fsync.js';
import { SECTIONS } from './sections.js';
import { settleWaitMs, unjournaledExt4 } from './settle.js';
import type { BenchContext, BenchRow } from './types.js';

const env = process.env;

function positive(name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`bench: fatal: ${name}=${v} is not a positive number\n`);
    process.exit(100);
  }
  return n;
}

interface Filesystem {
  readonly text: string;
  /** ext4 mounted without a journal (no /proc/fs/jbd2 entry for its device). */
  readonly unjournaledExt4: boolean;
}

/** The filesystem holding `dir`, from /proc/mounts (Linux); undefined elsewhere. */
function filesystemOf(dir: string): Filesystem | undefined {
  try {
    let best: { point: string; dev: string; type: string; opts: string } | undefined;
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [dev, point, type, opts] = line.split(' ');
      if (!dev || !point || !type) continue;
      const p = point.replace(/\\040/g, ' ');
      if ((dir === p || dir.startsWith(p.endsWith('/') ? p : `${p}/`)) && (!best || p.length > best.point.length)) {
        best = { point: p, dev, type, opts: opts ?? '' };
      }
    }
    if (best === undefined) return undefined;
    const journals = ((): string[] => {
      try {
        return readdirSync('/proc/fs/jbd2');
      } catch {
        return [];
      }
    })();
    const noJournal = unjournaledExt4(best.type, best.dev, journals);
    const notes = [best.dev, ...(best.opts.includes('sync') ? ['sync'] : []), ...(noJournal ? ['no journal'] : [])];
    return { text: `${best.type} on ${best.point} (${notes.join(', ')})`, unjournaledExt4: noJournal };
  } catch {
    return undefined;
  }
}

/** When the last run of the bench on this machine finished removing its files (milliseconds), in the temp dir. */
const CLEANED_STAMP = join(tmpdir(), 'quail-bench-cleaned');

/**
 * On ext4 without a journal the inode allocator steps over every inode freed in the last 60 to 300 seconds
 * (fs/ext4/ialloc.c, recently_deleted), and each file made meanwhile pays for the scan: on the development VM a new
 * file cost 700 µs of system time right after 12,000 deletions, 210 µs 150 s later, and 25 µs on a journaled ext4
 * (docs/PERFORMANCE.md, twenty-third pass). A run that starts soon after the last one removed its tens of thousands
 * of files measures that scan in its first cells, so it waits out the rest of 300 s first (QUAIL_BENCH_SETTLE).
 */
async function settle(fs: Filesystem | undefined, progress: (t: string) => void): Promise<void> {
  const v = env['QUAIL_BENCH_SETTLE'];
  const wanted = v !== undefined && v !== '' ? Number(v) : fs?.unjournaledExt4 === true ? 300 : 0;
  if (!Number.isFinite(wanted) || wanted < 0) {
    process.stderr.write(`bench: fatal: QUAIL_BENCH_SETTLE=${v ?? ''} is not a number of seconds\n`);
    process.exit(100);
  }
  let cleaned: number | undefined;
  try {
    cleaned = Number(readFileSync(CLEANED_STAMP, 'utf8'));
  } catch {
    cleaned = undefined; // no earlier run recorded
  }
  const waitMs = settleWaitMs(wanted, cleaned, Date.now());
  if (waitMs <= 0 || cleaned === undefined) return;
  progress(
    `waiting ${Math.ceil(waitMs / 1000)} s: the last run removed its files ${Math.round((Date.now() - cleaned) / 1000)} s ago, ` +
      `and ${fs?.unjournaledExt4 === true ? 'this ext4 has no journal, so' : 'on ext4 without a journal'} new files ` +
      'cost more until the freed inodes are 300 s old (QUAIL_BENCH_SETTLE=0 skips the wait)',
  );
  await sleep(waitMs);
}

function fmt(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function table(rows: ReadonlyArray<BenchRow & { section: string }>): string {
  const cells = rows.map((r) => [r.section, r.name, fmt(r.value), r.unit, r.note ?? '']);
  const head = ['section', 'measurement', 'value', 'unit', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]): string =>
    c
      .map((x, i) => (i === 2 ? x.padStart(widths[i] ?? 0) : x.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

async function main(): Promise<void> {
  const base = resolve(env['QUAIL_BENCH_DIR'] ?? tmpdir());
  mkdirSync(base, { recursive: true });
  const work = mkdtempSync(join(base, 'quail-bench-'));
  chmodSync(work, 0o711); // sections that deliver run workers as another uid, which must reach their mail root
  const budgetS = positive('QUAIL_BENCH_BUDGET') ?? 20;
  const fixedN = positive('QUAIL_BENCH_N');
  const only = env['QUAIL_BENCH_ONLY'];
  const progress = (t: string): void => {
    process.stderr.write(`bench: ${t}\n`);
  };
  const workFs = filesystemOf(work);
  try {
    const cpu = cpus();
    const facts: Array<[string, string]> = [
      ['date', new Date().toISOString()],
      ['host', `${hostname()} ${osType()} ${release()} ${process.arch}`],
      ['cpu', `${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown'}`],
      ['memory', `${(totalmem() / 2 ** 30).toFixed(1)} GiB total, ${(freemem() / 2 ** 30).toFixed(1)} GiB free`],
      ['node', `${process.version} (uid ${process.getuid?.() ?? '?'})`],
      ['work dir', `${work}${workFs ? ` — ${workFs.text}` : ''}`],
      ['settings', `N ${fixedN ?? 'section default'}, budget ${budgetS} s per case${only ? `, only "${only}"` : ''}`],
    ];
    process.stdout.write(`quail benchmark\n${facts.map(([k, v]) => `  ${k.padEnd(9)} ${v}`).join('\n')}\n`);

    await settle(workFs, progress);
    progress('measuring the disk: write + fsync of 512-byte files for 2 s');
    const fsyncDir = join(work, 'fsync');
    mkdirSync(fsyncDir);
    const fs = await measureFsync(fsyncDir, 2000);
    process.stdout.write(
      `  fsync     ${fmt(fs.perSecond)} write+fsync/s (${fs.count} in ${fs.seconds.toFixed(2)} s): the physical limit for one-at-a-time durable commits\n\n`,
    );

    const rows: Array<BenchRow & { section: string }> = [
      {
        section: 'disk',
        name: 'write + fsync, 512 B, sequential',
        value: fs.perSecond,
        unit: 'fsync/s',
        note: `${fs.count} in ${fs.seconds.toFixed(2)} s`,
      },
    ];
    for (const section of SECTIONS) {
      if (only && !section.name.includes(only)) continue;
      const dir = join(work, `s${rows.length}`);
      mkdirSync(dir);
      const ctx: BenchContext = {
        workDir: dir,
        n: (d) => Math.round(fixedN ?? d),
        caseBudgetMs: budgetS * 1000,
        fsyncRate: fs.perSecond,
        progress,
      };
      try {
        for (const r of await section.run(ctx)) rows.push({ ...r, section: section.name });
      } catch (err) {
        rows.push({ section: section.name, name: 'FAILED', value: 0, unit: '-', note: errText(err) });
      }
      // each section's files stay until the end of the run: removing them here would make the next section's new
      // files slower on ext4 without a journal (settle, above)
    }
    process.stdout.write(`${table(rows)}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    try {
      writeFileSync(CLEANED_STAMP, String(Date.now()));
    } catch {
      // the next run cannot wait for this one's deletions; it still measures
    }
  }
}

await main();
