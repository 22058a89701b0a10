// The benchmark frame's contract: a section is a named function that measures something and returns rows.

/** One line of the results table. */
export interface BenchRow {
  /** What was measured, e.g. `inject 4 KiB, concurrency 10`. */
  readonly name: string;
  readonly value: number;
  /** e.g. `msg/s`, `fsync/s`, `ms`. */
  readonly unit: string;
  /** Anything that helps read the number (sample size, fsyncs per message, ratio to the disk's limit). */
  readonly note?: string;
}

export interface BenchContext {
  /** A fresh temporary directory for this section (removed afterwards). */
  readonly workDir: string;
  /** Messages per case: QUAIL_BENCH_N, else the section's own default. */
  readonly n: (defaultN: number) => number;
  /** Upper bound in milliseconds for one case, so the default run stays under two minutes. */
  readonly caseBudgetMs: number;
  /** The disk's fsync rate measured at the start of this run (fsyncs per second). */
  readonly fsyncRate: number;
  /** Progress text for the operator (stderr, not part of the table). */
  readonly progress: (text: string) => void;
}

export interface BenchSection {
  readonly name: string;
  readonly run: (ctx: BenchContext) => Promise<BenchRow[]>;
}
