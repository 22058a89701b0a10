// The bench's settling (bench/README.md "Settling"): whether the work directory's file system is ext4 without a
// journal, and how long a run waits after the last run's removal of its files.

/** An ext4 file system with no journal: /proc/fs/jbd2 (`entries`) has no `<device>-<n>` entry for its device. */
export function unjournaledExt4(type: string, device: string, entries: readonly string[]): boolean {
  if (type !== 'ext4') return false;
  const name = device.slice(device.lastIndexOf('/') + 1);
  return !entries.some((e) => e.startsWith(`${name}-`));
}

/**
 * Milliseconds to wait before measuring: what is left of `wantedS` seconds since the last run finished removing its
 * files at `cleanedMs` (undefined: no run recorded), never more than `wantedS` (a stamp from the future waits that).
 */
export function settleWaitMs(wantedS: number, cleanedMs: number | undefined, nowMs: number): number {
  if (cleanedMs === undefined || !Number.isFinite(cleanedMs) || wantedS <= 0) return 0;
  return Math.max(0, Math.min(wantedS * 1000, cleanedMs + wantedS * 1000 - nowMs));
}
