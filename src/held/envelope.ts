// The envelope of one held Maildir message, as serialsmtp reads it: Return-Path (sender), first Delivered-To.
import { open } from 'node:fs/promises';

/** How far into a file the header lines are looked for: qmail-local's two lines come first. */
const HEAD_BYTES = 16384;

export type HeldEnvelope =
  | {
      readonly kind: 'ok';
      /** The envelope sender from the Return-Path line ('' for a bounce). */
      readonly sender: string;
      /** The first Delivered-To address with the prefix removed: the customer's recipient. */
      readonly recipient: string;
      /** Bytes before the message proper: the Return-Path line, which is not sent (RFC 5321 4.4). */
      readonly offset: number;
    }
  /** No Delivered-To line starting with the prefix: serialmail leaves such a message alone and says so. */
  | { readonly kind: 'foreign'; readonly reason: string };

/** Removes qmail's quoting of a local part (`"a b"@c` → `a b@c`), as written by quoteSender. */
function unquote(addr: string): string {
  const m = /^"((?:[^"\\]|\\.)*)"(@.*)?$/.exec(addr);
  if (m === null) return addr;
  return `${(m[1] ?? '').replace(/\\(.)/g, '$1')}${m[2] ?? ''}`;
}

/**
 * Reads the head of a Maildir file written by a qmail-local delivery (`Return-Path: <s>` then `Delivered-To: r`)
 * and finds the envelope: sender from the first Return-Path line of the header, recipient from the first
 * Delivered-To line of the header with `prefix` removed (compared without regard to ASCII case, as qmail
 * compares the domain part of a virtual prefix). A file without them is 'foreign'.
 */
export function parseHead(head: string, prefix: string): HeldEnvelope {
  let sender: string | undefined;
  let senderEnd = 0;
  let delivered: string | undefined;
  let pos = 0;
  while (pos < head.length) {
    const nl = head.indexOf('\n', pos);
    if (nl < 0) break; // a line cut by HEAD_BYTES: the header lines we need come first
    const line = head.slice(pos, nl);
    if (line === '' || line === '\r') break; // end of the header
    const lower = line.slice(0, 14).toLowerCase();
    if (sender === undefined && lower.startsWith('return-path:')) {
      const v = line.slice(12).trim();
      sender = unquote(v.startsWith('<') && v.endsWith('>') ? v.slice(1, -1) : v);
      if (pos === 0) senderEnd = nl + 1;
    } else if (delivered === undefined && lower.startsWith('delivered-to:')) {
      delivered = line.slice(13).trim();
    }
    if (sender !== undefined && delivered !== undefined) break;
    pos = nl + 1;
  }
  if (delivered === undefined) return { kind: 'foreign', reason: 'no Delivered-To line' };
  if (delivered.slice(0, prefix.length).toLowerCase() !== prefix.toLowerCase() || delivered.length === prefix.length)
    return { kind: 'foreign', reason: `Delivered-To ${delivered} does not start with ${prefix}` };
  if (sender === undefined) return { kind: 'foreign', reason: 'no Return-Path line' };
  return { kind: 'ok', sender, recipient: delivered.slice(prefix.length), offset: senderEnd };
}

/** Reads the start of `path` and parses it (parseHead). Rejects when the file cannot be read. */
export async function readEnvelope(path: string, prefix: string): Promise<HeldEnvelope> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
    return parseHead(buf.subarray(0, bytesRead).toString('latin1'), prefix);
  } finally {
    await fh.close();
  }
}
