// Latency under load: a probe client that sends one message at a fixed interval beside the load and times each one,
// to its 250 after DATA and to its file in the Maildir.
import { readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { sendOne, smtpMessage4k } from './smtp-client.js';

/** What the probe saw: the times of the messages it sent, in milliseconds. */
export interface ProbeFigures {
  readonly sent: number;
  /** From connecting to the 250 after DATA, for every message answered 250. */
  readonly smtpMs: readonly number[];
  /** From connecting to the message's file in the mailbox's `new/`, for every message found there. */
  readonly deliveredMs: readonly number[];
}

export interface Probe {
  /** Stops sending, waits up to `waitMs` for the messages answered 250 to reach the mailbox, and says what it saw. */
  stop(waitMs: number): Promise<ProbeFigures>;
}

const HEADER = 'X-Bench-Probe';
const since = (t: bigint): number => Number(process.hrtime.bigint() - t) / 1e6;

/**
 * Starts probing `to` on 127.0.0.1:port every `everyMs`, open loop: a session starts on time even while earlier ones
 * still run, so a slow server is not given fewer probes (no coordinated omission). `newDir` is the mailbox's
 * `new/`, watched (inotify) for the probe's messages; each carries its number in an `X-Bench-Probe` header line.
 */
export function startProbe(o: { port: number; to: string; newDir: string; everyMs: number }): Probe {
  const started = new Map<number, bigint>();
  const smtpMs: number[] = [];
  const deliveredMs: number[] = [];
  const answered = new Set<number>();
  const found = new Set<number>();
  const running: Array<Promise<void>> = [];
  const look = (name: string): void => {
    let text: string;
    try {
      text = readFileSync(join(o.newDir, name), 'latin1').slice(0, 1024);
    } catch {
      return; // not a file (yet), or gone
    }
    const m = new RegExp(`^${HEADER}: (\\d+)\\r?$`, 'm').exec(text);
    const i = m ? Number(m[1]) : NaN;
    const t = started.get(i);
    if (t === undefined || found.has(i)) return;
    found.add(i);
    deliveredMs.push(since(t));
  };
  const watcher: FSWatcher = watch(o.newDir, (_event, name) => {
    if (name !== null) look(name);
  });
  let sent = 0;
  const tick = (): void => {
    const i = sent++;
    const t = process.hrtime.bigint();
    started.set(i, t);
    running.push(
      sendOne(o.port, o.to, smtpMessage4k(o.to, `${HEADER}: ${i}\r\n`)).then((ok) => {
        if (!ok) return;
        smtpMs.push(since(t));
        answered.add(i);
      }),
    );
  };
  tick(); // the first at once: a short phase still has one
  const timer = setInterval(tick, o.everyMs);
  return {
    stop: async (waitMs) => {
      clearInterval(timer);
      await Promise.all(running);
      const until = Date.now() + waitMs;
      while ([...answered].some((i) => !found.has(i)) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
        for (const name of readdirSync(o.newDir)) look(name); // an event inotify did not deliver
      }
      watcher.close();
      return { sent, smtpMs, deliveredMs };
    },
  };
}

/** The nearest-rank percentile `p` (0–100) of `xs`; NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}
