// ASCII-only case folding and comparisons, as qmail does them (only A-Z / a-z fold).

/** lowercase(x) of SEMANTICS.md: folds only A-Z. */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

export function asciiEqualsIgnoreCase(a: string, b: string): boolean {
  return a.length === b.length && asciiLower(a) === asciiLower(b);
}
