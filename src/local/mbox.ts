// mbox delivery (docs/QMAIL.md D.7.2): append From_ line, Return-Path, Delivered-To, the >From-quoted message.
import { spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { errorStr } from './errstr.js';

/** A failure line of qmail-local (exit 111). */
export class DeliveryFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 111,
  ) {
    super(message);
  }
}

const FLOCK_CANDIDATES = ['/usr/bin/flock', '/bin/flock'];
const LOCK_CONFLICT = 75;

/**
 * flock(2) on the open file, as qmail's lock_ex() does. Node has no flock, so util-linux `flock -w 30 3` is run on
 * a duplicate of our descriptor: flock locks belong to the open file description, so the lock stays held by our
 * descriptor after the helper exits and is released when we close it. Interoperates with every tool that uses
 * flock (procmail, mutt, mail.local with flock); no dotlock is made. Returns 'locked', 'timeout' or 'unlocked'
 * (no helper or it failed: qmail too delivers unlocked when lock_ex fails).
 */
async function flockExclusive(fd: number, seconds: number): Promise<'locked' | 'timeout' | 'unlocked'> {
  const bin = FLOCK_CANDIDATES.find((p) => existsSync(p));
  if (bin === undefined) return 'unlocked';
  return new Promise((resolve) => {
    const child = spawn(bin, ['-x', '-w', String(seconds), '-E', String(LOCK_CONFLICT), '3'], {
      stdio: ['ignore', 'ignore', 'ignore', fd],
      env: {},
    });
    child.on('error', () => resolve('unlocked'));
    child.on('close', (code) => resolve(code === 0 ? 'locked' : code === LOCK_CONFLICT ? 'timeout' : 'unlocked'));
  });
}

/** `>*From ` at the start of a line gets one more `>`. */
function needsQuote(line: Buffer): boolean {
  let i = 0;
  while (i < line.length && line[i] === 0x3e) i++;
  return line.subarray(i, i + 5).toString('latin1') === 'From ';
}

/** Buffered appender: flushes in ~64 KiB writes. */
class Out {
  private parts: Buffer[] = [];
  private size = 0;
  constructor(private readonly fh: FileHandle) {}
  async put(b: Buffer): Promise<void> {
    this.parts.push(b);
    this.size += b.length;
    if (this.size >= 65536) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.size === 0) return;
    const all = Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    await this.fh.write(all, 0, all.length);
  }
}

/** Appends the message at `messagePath` to the mbox `path` (absolute or home-relative already joined). */
export async function deliverToMbox(
  path: string,
  shownName: string,
  lines: { ufline: string; rpline: string; dtline: string },
  messagePath: string,
): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
  } catch (err) {
    throw new DeliveryFailure(`Unable to open ${shownName}: ${errorStr(err)}. (#4.2.1)`);
  }
  let locked = false;
  let start = 0;
  try {
    const lock = await flockExclusive(fh.fd, 30);
    if (lock === 'timeout') throw new DeliveryFailure('File has been locked for 30 seconds straight. (#4.3.0)');
    locked = lock === 'locked';
    start = (await fh.stat()).size;
    let src: FileHandle;
    try {
      src = await open(messagePath, 'r');
    } catch (err) {
      throw new DeliveryFailure(`Unable to read message: ${errorStr(err)}. (#4.3.0)`);
    }
    try {
      await appendQuoted(fh, src, lines, shownName);
    } finally {
      await src.close();
    }
  } catch (err) {
    if (locked) await fh.truncate(start).catch(() => undefined);
    await fh.close().catch(() => undefined);
    throw err;
  }
  await fh.close();
}

async function appendQuoted(
  fh: FileHandle,
  src: FileHandle,
  lines: { ufline: string; rpline: string; dtline: string },
  name: string,
): Promise<void> {
  const out = new Out(fh);
  const writeErr = (err: unknown): DeliveryFailure =>
    new DeliveryFailure(`Unable to write ${name}: ${errorStr(err)}. (#4.3.0)`);
  try {
    await out.put(Buffer.from(lines.ufline + lines.rpline + lines.dtline, 'latin1'));
    const buf = Buffer.allocUnsafe(65536);
    let carry: Buffer = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      let n: number;
      try {
        n = (await src.read(buf, 0, buf.length, pos)).bytesRead;
      } catch (err) {
        throw new DeliveryFailure(`Unable to read message: ${errorStr(err)}. (#4.3.0)`);
      }
      if (n === 0) break;
      pos += n;
      let data = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, n)]) : Buffer.from(buf.subarray(0, n));
      let nl: number;
      while ((nl = data.indexOf(0x0a)) >= 0) {
        const line = data.subarray(0, nl + 1);
        if (needsQuote(line)) await out.put(Buffer.from('>'));
        await out.put(line);
        data = data.subarray(nl + 1);
      }
      carry = data;
    }
    if (carry.length > 0) {
      if (needsQuote(carry)) await out.put(Buffer.from('>'));
      await out.put(carry);
      await out.put(Buffer.from('\n'));
    }
    await out.put(Buffer.from('\n'));
    await out.flush();
    await fh.sync();
  } catch (err) {
    if (err instanceof DeliveryFailure) throw err;
    throw writeErr(err);
  }
}
