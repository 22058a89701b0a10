// `npm run bench`: machine facts, this disk's fsync rate, then every registered section as one table. No assertions.
//
// Environment: QUAIL_BENCH_N (messages per case, default per section, e.g. 2000), QUAIL_BENCH_BUDGET (seconds
// per case, default 20, so the default run stays under two minutes), QUAIL_BENCH_DIR (where the temporary
// files go, default the system temp dir: put it on the disk the queue will live on), QUAIL_BENCH_ONLY
// (run only sections whose name contains this text), QUAIL_BENCH_CONTROL (`name=value ...`: control files written
// into every quail root of the run, for A/B runs such as `smtpdprocesses=1`), QUAIL_BENCH_WARMUP (versus: messages
// each server gets before the measured ones, default 1000), QUAIL_BENCH_VIA (versus: `assign` or `directory`).
import { chmodSync, mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { cpus, freemem, hostname, release, tmpdir, totalmem, type as osType } from 'node:os';
import { join, resolve } from 'node:path';
import { errText } from '../src/core/index.js';
import { measureFsync } from './fsync.js';
import { SECTIONS } from './sections.js';
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

/** The filesystem holding `dir`, from /proc/mounts (Linux); undefined elsewhere. */
function filesystemOf(dir: string): string | undefined {
  try {
    let best: { point: string; text: string } | undefined;
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [dev, point, type, opts] = line.split(' ');
      if (!dev || !point || !type) continue;
      const p = point.replace(/\\040/g, ' ');
      if ((dir === p || dir.startsWith(p.endsWith('/') ? p : `${p}/`)) && (!best || p.length > best.point.length)) {
        best = { point: p, text: `${type} on ${p} (${dev}${opts?.includes('sync') ? ', sync' : ''})` };
      }
    }
    return best?.text;
  } catch {
    return undefined;
  }
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
  try {
    const cpu = cpus();
    const facts: Array<[string, string]> = [
      ['date', new Date().toISOString()],
      ['host', `${hostname()} ${osType()} ${release()} ${process.arch}`],
      ['cpu', `${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown'}`],
      ['memory', `${(totalmem() / 2 ** 30).toFixed(1)} GiB total, ${(freemem() / 2 ** 30).toFixed(1)} GiB free`],
      ['node', `${process.version} (uid ${process.getuid?.() ?? '?'})`],
      ['work dir', `${work}${filesystemOf(work) ? ` — ${filesystemOf(work) ?? ''}` : ''}`],
      ['settings', `N ${fixedN ?? 'section default'}, budget ${budgetS} s per case${only ? `, only "${only}"` : ''}`],
    ];
    process.stdout.write(`quail benchmark\n${facts.map(([k, v]) => `  ${k.padEnd(9)} ${v}`).join('\n')}\n`);

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
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    process.stdout.write(`${table(rows)}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
