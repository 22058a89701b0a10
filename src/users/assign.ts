// users/assign parser (docs/QMAIL.md C.1) and the users/cdb records qmail-newu writes from it (C.2).
import { QuailError, asciiLower } from '../core/index.js';

/** One assignment line of users/assign. uid/gid stay text: lookup parses them as decimal prefixes (C.3.5). */
export interface AssignEntry {
  /** 1-based line number in users/assign. */
  readonly line: number;
  /** `+` line (prefix match) or any other first character (exact match, C.1.3). */
  readonly wildcard: boolean;
  /** The local field as written (between the first character and the first `:`). */
  readonly local: string;
  readonly user: string;
  readonly uid: string;
  readonly gid: string;
  readonly home: string;
  readonly dash: string;
  /** ext for simple lines, the extension prefix for `+` lines. */
  readonly ext: string;
}

export interface ParsedAssign {
  readonly entries: readonly AssignEntry[];
  /** Last character of every non-empty `+` local field, each once, in order of first appearance (C.2.1). */
  readonly wildchars: string;
}

/** users/assign is malformed (C.1.5): temporary, like qmail-newu's exit 111; the old users/cdb is kept. */
export class AssignFormatError extends QuailError {
  constructor(
    readonly line: number,
    readonly what: string,
  ) {
    super(`bad format in users/assign line ${line}: ${what}`, true);
    this.name = 'AssignFormatError';
  }
}

/**
 * Parses users/assign exactly as qmail-newu does. Text is Latin-1 (one char per byte); a Buffer is decoded so.
 * Throws AssignFormatError naming the line and what is wrong.
 */
export function parseAssign(input: string | Uint8Array): ParsedAssign {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const entries: AssignEntry[] = [];
  let wildchars = '';
  let pos = 0;
  for (let lineNo = 1; ; lineNo++) {
    const nl = text.indexOf('\n', pos);
    const hasNewline = nl !== -1;
    const line = hasNewline ? text.slice(pos, nl) : text.slice(pos);
    pos = hasNewline ? nl + 1 : text.length;
    // C.1.1: the first line starting with '.' ends the file successfully, with or without its newline.
    if (line.startsWith('.')) break;
    if (!hasNewline) {
      throw new AssignFormatError(
        lineNo,
        line === ''
          ? 'end of file without the terminating "." line'
          : 'last line has no newline and no "." line follows',
      );
    }
    if (line.includes('\0')) throw new AssignFormatError(lineNo, 'the line contains a NUL byte');
    const colon = line.indexOf(':');
    if (colon === -1) {
      throw new AssignFormatError(
        lineNo,
        line.trim() === '' ? 'blank line (users/assign allows no blank lines or comments)' : 'no ":" in the line',
      );
    }
    if (colon === 0) throw new AssignFormatError(lineNo, 'the line starts with ":" (begin it with "=" or "+")');
    const rest = line.slice(colon + 1).split(':');
    // Six fields, each closed by a ':'; anything after the sixth of these colons is ignored (C.1.4).
    if (rest.length < 7) {
      throw new AssignFormatError(
        lineNo,
        `${rest.length - 1} ":" after the local field, need 7 (=local:user:uid:gid:homedir:dash:ext:)`,
      );
    }
    const [user, uid, gid, home, dash, ext] = rest as [string, string, string, string, string, string];
    const wildcard = line[0] === '+';
    const local = line.slice(1, colon);
    if (wildcard && local !== '') {
      const last = local[local.length - 1] ?? '';
      if (!wildchars.includes(last)) wildchars += last;
    }
    entries.push({ line: lineNo, wildcard, local, user, uid, gid, home, dash, ext });
  }
  return { entries, wildchars };
}

/** cdb key of an entry (C.2.1): `!` + lowercase(local), plus NUL for a simple assignment. */
function assignKey(e: Pick<AssignEntry, 'wildcard' | 'local'>): string {
  return `!${asciiLower(e.local)}${e.wildcard ? '' : '\0'}`;
}

/** The users/cdb records of a parsed file, in qmail-newu's order: one per entry, then `""` → wildchars. */
export function assignRecords(parsed: ParsedAssign): Array<[string, string]> {
  // Latin-1 strings (one character per byte; the cdb builder writes them as such). join makes flat strings; a
  // template literal makes rope strings that cost a flattening when copied.
  const out = parsed.entries.map((e): [string, string] => [
    assignKey(e),
    [e.user, e.uid, e.gid, e.home, e.dash, e.ext].join('\0'),
  ]);
  out.push(['', parsed.wildchars]);
  return out;
}
