// Parsers of qmail's control-file syntaxes (docs/QMAIL.md 0.2-0.5). Pure: text in, values out.

/** Splits at '\n'; a last line without '\n' counts. */
function lines(text: string): string[] {
  const out = text.split('\n');
  if (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

const trimEnd = (s: string): string => s.replace(/[ \t]+$/, '');

/**
 * The entries of one line of a list or mapping file, as qmail reads them: control_readfile drops a line that is
 * empty, starts with '#' or starts with a NUL (a C string), and keeps a NUL inside one; constmap then ends an entry at
 * every NUL, so `a\0b` is the two entries `a` and `b` (an empty piece is an entry too).
 */
function entriesOf(raw: string): string[] {
  const l = trimEnd(raw);
  if (l === '' || l.startsWith('#') || l.startsWith('\0')) return [];
  return l.includes('\0') ? l.split('\0') : [l];
}

/** List file (0.2): trailing spaces/tabs removed, empty and '#' lines dropped, leading whitespace kept. */
export function parseList(text: string): string[] {
  const out: string[] = [];
  for (const raw of lines(text)) out.push(...entriesOf(raw));
  return out;
}

/** What is wrong with a host name as written in a list or as a mapping's pattern, in words, or null. */
function hostJunk(entry: string, what: 'entry' | 'pattern'): string | null {
  // qmail keeps leading and inner whitespace (0.2), and no host or address has any: the entry never matches
  if (/[ \t]/.test(entry)) return `${what} ${JSON.stringify(entry)} has a space or tab, so it never matches`;
  // `a.test:b` in a host list (a virtualdomains or smtproutes line pasted in) is no host; `[IPv6:...]` literals are
  if (what === 'entry' && entry.includes(':') && !entry.startsWith('['))
    return `entry ${JSON.stringify(entry)} has a ":", so it never matches a host (a mapping line in a list of hosts?)`;
  return null;
}

/**
 * A host list file (rcpthosts, morercpthosts, locals, percenthack) read as parseList does, telling `junk` of each
 * entry that can never match, with its 1-based line: qmail keeps such an entry without a word (0.2).
 */
export function reportHostList(text: string, junk: (line: number, why: string) => void): void {
  let n = 0;
  for (const raw of lines(text)) {
    n++;
    for (const e of entriesOf(raw)) {
      const why = hostJunk(e, 'entry');
      if (why !== null) junk(n, why);
    }
  }
}

/** One entry of a mapping file, with its 1-based line number (for `quail explain`). */
export interface MapEntry {
  readonly pattern: string;
  readonly value: string;
  readonly line: number;
  readonly text: string;
}

/**
 * Mapping file (0.3): list rules, then split at the first ':'; lines without ':' ignored.
 * Keys are ASCII-lowercased patterns; the last line for a pattern wins. `ignored` hears of each line qmail passes
 * over without a word, with its 1-based number: one without ':', one whose pattern has a space or tab (kept, never
 * matching), and an earlier line a later one overrides (quail start warns of them, quail showctl lists them). The
 * map itself is qmail's whatever `ignored` hears.
 */
export function parseMap(text: string, ignored?: (line: number, why: string) => void): Map<string, MapEntry> {
  const out = new Map<string, MapEntry>();
  let n = 0;
  for (const raw of lines(text)) {
    n++;
    for (const l of entriesOf(raw)) addMapEntry(out, l, n, ignored);
  }
  return out;
}

/** One entry of a mapping file: split at its first ':'; without one it is ignored (and `ignored` hears why). */
function addMapEntry(
  out: Map<string, MapEntry>,
  l: string,
  n: number,
  ignored?: (line: number, why: string) => void,
): void {
  const colon = l.indexOf(':');
  if (colon < 0) {
    ignored?.(n, `${JSON.stringify(l)} has no ":" and is ignored`);
    return;
  }
  const pattern = l.slice(0, colon);
  const junk = hostJunk(pattern, 'pattern');
  if (junk !== null) ignored?.(n, junk);
  const key = pattern.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const before = out.get(key);
  if (before !== undefined) ignored?.(n, `${JSON.stringify(pattern)} is given again: it wins over line ${before.line}`);
  out.set(key, { pattern, value: l.slice(colon + 1), line: n, text: l });
}

/**
 * Single-value file (0.4): first line, trailing spaces/tabs removed. A CR is kept, as qmail's
 * control_readline keeps it (it strips only '\n', ' ' and '\t').
 */
export function parseSingle(text: string): string {
  const nl = text.indexOf('\n');
  const first = nl < 0 ? text : text.slice(0, nl);
  return first.replace(/[ \t]+$/, '');
}

/**
 * Number file (0.5): leading decimal digits of the first line; null (= absent) if it does not start with one. With
 * `wraps`, the value qmail's C int holds (catalogue `wraps`): the digits modulo 2^32, digit by digit (no precision
 * lost on long numbers), as signed for `int32`.
 */
export function parseNumber(text: string, wraps?: 'int32' | 'uint32'): number | null {
  const m = /^[0-9]+/.exec(text);
  if (!m) return null;
  if (wraps === undefined) return Number(m[0]);
  let n = 0;
  for (const d of m[0]) n = (n * 10 + Number(d)) % 4294967296;
  return wraps === 'int32' && n >= 2147483648 ? n - 4294967296 : n;
}
