// Test helper (not a test): crash-child.ts started as a writer process, its acknowledgements collected as they come.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'crash-child.js');

export interface Writer {
  readonly child: ChildProcess;
  /** Every id the writer acknowledged so far (its "ok <id> <sha256>" lines): id → sha256 of the data. */
  readonly acked: Map<string, string>;
  readonly firstAck: Promise<void>;
  readonly exited: Promise<void>;
}

/** A writer injecting into ROOT's queue (through the journal with `journal`); its stderr is `stderr`. */
export function startWriter(root: string, journal: boolean, stderr: 'inherit' | 'ignore' = 'inherit'): Writer {
  const child = spawn(process.execPath, journal ? [CHILD, root, 'journal'] : [CHILD, root], {
    stdio: ['ignore', 'pipe', stderr],
  });
  const acked = new Map<string, string>();
  let buf = '';
  let first: () => void = () => undefined;
  const firstAck = new Promise<void>((r) => (first = r));
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const m = /^ok (\S+) ([0-9a-f]{64})$/.exec(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (m) {
        acked.set(m[1] as string, m[2] as string);
        first();
      }
    }
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return { child, acked, firstAck, exited };
}
