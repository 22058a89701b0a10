// POP3 command lines over the shared pull-style Reader: latin1 strings without CRLF, or why there is none.
import type { Reader } from '../lineio/index.js';

export type LineResult = string | { readonly kind: 'eof' | 'timeout' | 'too-long' };

/** RFC 2449 section 4: commands are at most 255 octets including CRLF; we allow some slack. */
const MAX_LINE = 1024;

/** The next command line (a bare LF ends a line too: POP3 clients are not held to CRLF, as qmail-popup). */
export async function commandLine(reader: Reader, timeoutMs: number): Promise<LineResult> {
  const r = await reader.line(timeoutMs, MAX_LINE);
  return typeof r === 'string' ? { kind: r } : r.line.toString('latin1');
}
