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
