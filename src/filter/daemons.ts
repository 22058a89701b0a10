// Clients of the scanners people run beside qmail: spamd (the spamc protocol, CHECK) and clamd (INSTREAM).
import { createReadStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { QuailError } from '../core/index.js';

/** `host:port` (TCP; host defaults to 127.0.0.1) or an absolute path (a unix socket). */
export type DaemonAddress = { readonly path: string } | { readonly host: string; readonly port: number };

export function parseDaemonAddress(s: string, defaultPort: number): DaemonAddress | undefined {
  if (s.startsWith('/')) return { path: s };
  const m = /^(?:([0-9A-Za-z.:-]*):)?(\d{1,5})$/.exec(s) ?? /^([0-9A-Za-z.-]+)$/.exec(s);
  if (!m) return undefined;
  if (m[2] === undefined) return { host: m[1] ?? '127.0.0.1', port: defaultPort };
  return { host: m[1] !== undefined && m[1] !== '' ? m[1] : '127.0.0.1', port: Number(m[2]) };
}

const where = (a: DaemonAddress): string => ('path' in a ? a.path : `${a.host}:${a.port}`);

/**
 * The most of an answer kept: spamd's CHECK answer and clamd's verdict are a few lines. A daemon that sends more
 * (a broken or hostile one, or not a scanner at all) is a temporary failure, not memory filled until the timeout.
 */
export const MAX_ANSWER = 64 * 1024;

/**
 * One request: `send` writes it, the answer is collected until the daemon closes or `done` says so (`done` sees
 * each new chunk: the answer so far is not copied again per chunk), at most MAX_ANSWER bytes.
 */
function exchange(
  a: DaemonAddress,
  name: string,
  timeoutMs: number,
  send: (s: Socket) => Promise<void>,
  done: (chunk: Buffer) => boolean,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = 'path' in a ? connect(a.path) : connect(a.port, a.host);
    const parts: Buffer[] = [];
    let size = 0;
    let finished = false;
    const fail = (why: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      s.destroy();
      reject(new QuailError(`${name} at ${where(a)}: ${why}`, true));
    };
    // One deadline for the whole exchange, not an idle timeout: a daemon that dribbles a byte now and then cannot
    // keep the scan (and the SMTP client) waiting past it.
    const deadline = setTimeout(
      () => fail(`no complete answer within ${Math.round(timeoutMs / 100) / 10} s`),
      Math.max(0, timeoutMs),
    );
    s.on('error', (err) => fail(err.message));
    s.on('data', (c: Buffer) => {
      if (finished) return;
      size += c.length;
      if (size > MAX_ANSWER) {
        fail(`answered more than ${MAX_ANSWER} bytes: is it really ${name}?`);
        return;
      }
      parts.push(c);
      if (done(c)) {
        finished = true;
        clearTimeout(deadline);
        s.destroy();
        resolve(Buffer.concat(parts));
      }
    });
    s.on('end', () => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      resolve(Buffer.concat(parts));
    });
    s.on('connect', () => {
      send(s).catch((err: unknown) => fail(String(err)));
    });
  });
}

async function writeAll(s: Socket, b: Buffer): Promise<void> {
  if (!s.write(b)) await new Promise((r) => s.once('drain', r));
}

export interface SpamVerdict {
  readonly spam: boolean;
  readonly score: number;
  readonly threshold: number;
}

/** spamc's CHECK (spamd's PROTOCOL file, SPAMC/1.5): `Spam: True ; 1000.0 / 5.0` in the answer. */
export async function spamdCheck(
  a: DaemonAddress,
  file: string,
  size: number,
  timeoutMs: number,
): Promise<SpamVerdict> {
  const got = await exchange(
    a,
    'spamd',
    timeoutMs,
    async (s) => {
      await writeAll(s, Buffer.from(`CHECK SPAMC/1.5\r\nContent-length: ${size}\r\n\r\n`, 'latin1'));
      for await (const c of createReadStream(file)) await writeAll(s, c as Buffer);
      s.end();
    },
    () => false,
  );
  const text = got.toString('latin1');
  const status = /^SPAMD\/\d+\.\d+ (\d+) (\S+)/.exec(text);
  if (!status) throw new QuailError(`spamd at ${where(a)}: not a spamd answer`, true);
  if (status[1] !== '0') throw new QuailError(`spamd at ${where(a)}: ${status[1]} ${status[2] ?? ''}`, true);
  const m = /\r\nSpam: (True|False|Yes|No) ; (-?[\d.]+) \/ (-?[\d.]+)\r\n/i.exec(text);
  if (!m) throw new QuailError(`spamd at ${where(a)}: no Spam header in its answer`, true);
  return { spam: /^(true|yes)$/i.test(m[1] ?? ''), score: Number(m[2]), threshold: Number(m[3]) };
}

export type VirusVerdict = { readonly infected: false } | { readonly infected: true; readonly name: string };

/** clamd's INSTREAM (clamd(8)): 4-byte big-endian length + chunk, a zero length ends; `stream: OK` or `NAME FOUND`. */
export async function clamdScan(a: DaemonAddress, file: string, timeoutMs: number): Promise<VirusVerdict> {
  const got = await exchange(
    a,
    'clamd',
    timeoutMs,
    async (s) => {
      await writeAll(s, Buffer.from('zINSTREAM\0', 'latin1'));
      for await (const c of createReadStream(file, { highWaterMark: 65536 })) {
        const chunk = c as Buffer;
        const len = Buffer.alloc(4);
        len.writeUInt32BE(chunk.length);
        await writeAll(s, Buffer.concat([len, chunk]));
      }
      await writeAll(s, Buffer.alloc(4));
    },
    (b) => b.includes(0),
  );
  const text = got.toString('latin1').replace(/\0.*$/s, '');
  if (/^stream: OK$/.test(text)) return { infected: false };
  const found = /^stream: (.+) FOUND$/.exec(text);
  if (found?.[1] !== undefined) return { infected: true, name: found[1] };
  throw new QuailError(`clamd at ${where(a)}: ${text === '' ? 'no answer' : text}`, true);
}
