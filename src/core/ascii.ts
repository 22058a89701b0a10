// ASCII-only case folding and comparisons, as qmail does them (only A-Z / a-z fold); qmail's C strings.

/** lowercase(x) of docs/QMAIL.md: folds only A-Z. */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** qmail-send's logsafe encoding of log text: newline → `/`; bytes below 33, above 126, and `%` → `_`. */
export function logsafe(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.charCodeAt(0);
    if (ch === '\n') out += '/';
    else if (c < 33 || c > 126 || ch === '%') out += '_';
    else out += ch;
  }
  return out;
}

/** A string as qmail's C code reads it (a C string): up to its first NUL byte. */
export function cString(s: string): string {
  const nul = s.indexOf('\0');
  return nul < 0 ? s : s.slice(0, nul);
}

/**
 * Decimal digits as qmail's scan_ulong reads them into a C integer that keeps them modulo `modulus` (a uid_t keeps 2^32,
 * a byte 256). Digit by digit, so a number longer than a double's precision still comes out right.
 */
export function digitsModulo(digits: string, modulus: number): number {
  let n = 0;
  for (const d of digits) n = (n * 10 + (d.charCodeAt(0) - 48)) % modulus;
  return n;
}

/**
 * `a.b.c.d` read as qmail's ip_scan (ip.c): each part any number of decimal digits, kept in a byte, so `127.0.0.0001`
 * and `127.0.0.257` are 127.0.0.1. Null when the text is not four dotted digit runs.
 */
export function ipScan(text: string): string | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  return m
    ? m
        .slice(1)
        .map((part) => digitsModulo(part, 256))
        .join('.')
    : null;
}
