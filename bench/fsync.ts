// The physical limit every durable queue lives under: how many write+fsync of a small file the disk does per second.
import { open } from 'node:fs/promises';
import { join } from 'node:path';

export interface FsyncResult {
  readonly perSecond: number;
  readonly count: number;
  readonly seconds: number;
}

/** Writes and fsyncs small new files in `dir`, one after the other, for about `ms` milliseconds. */
export async function measureFsync(dir: string, ms = 2000): Promise<FsyncResult> {
  const data = Buffer.alloc(512, 0x61);
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let count = 0;
  while (process.hrtime.bigint() < deadline) {
    const path = join(dir, `f${count}`);
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.write(data, 0, data.length, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    count++;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { perSecond: count / seconds, count, seconds };
}
