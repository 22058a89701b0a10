// The .qmail line parser (docs/QMAIL.md D.6.1-D.6.2): text in, one instruction per line out. Pure.
import { cString } from '../core/index.js';

export type Instruction =
  /** The very first line is empty (after trimming): the delivery defers (D.6.2). */
  | { readonly kind: 'blank-first-line'; readonly line: number }
  /** An empty line elsewhere: ignored. */
  | { readonly kind: 'blank'; readonly line: number }
  | { readonly kind: 'comment'; readonly line: number; readonly text: string }
  /** `|command`: the command is the rest of the line (may be empty or start with spaces). */
  | { readonly kind: 'program'; readonly line: number; readonly command: string }
  /** `&target` or any other line: the target verbatim (may be empty or start with spaces). */
  | { readonly kind: 'forward'; readonly line: number; readonly target: string }
  /** A line starting with `.` or `/` and ending in `/`. */
  | { readonly kind: 'maildir'; readonly line: number; readonly path: string }
  /** A line starting with `.` or `/` not ending in `/`. */
  | { readonly kind: 'mbox'; readonly line: number; readonly path: string }
  /** `+list`: forward-only from here on (D.6.4). */
  | { readonly kind: 'plus-list'; readonly line: number }
  /** Any other `+` line: ignored. */
  | { readonly kind: 'plus-other'; readonly line: number; readonly text: string };

/**
 * Splits the text at `\n` (a missing final newline is supplied), removes trailing spaces and tabs from each
 * line and classifies it by its first character, exactly as qmail-local does. A NUL byte ends what a line says
 * (qmail-local passes each line on as a C string), so a line that starts with one is blank; only the choice between
 * Maildir and mbox looks at the line's last byte after the trim, NUL or not, as qmail-local does.
 */
export function parseInstructions(text: string): Instruction[] {
  const body = text.endsWith('\n') ? text : `${text}\n`;
  const lines = body.split('\n');
  lines.pop(); // the empty piece after the final newline
  return lines.map((raw, idx): Instruction => {
    const line = idx + 1;
    const s = raw.replace(/[ \t]+$/, '');
    switch (s[0]) {
      case undefined:
      case '\0':
        return idx === 0 ? { kind: 'blank-first-line', line } : { kind: 'blank', line };
      case '#':
        return { kind: 'comment', line, text: s };
      case '.':
      case '/':
        return s.endsWith('/') ? { kind: 'maildir', line, path: cString(s) } : { kind: 'mbox', line, path: cString(s) };
      case '|':
        return { kind: 'program', line, command: cString(s.slice(1)) };
      case '+':
        return cString(s) === '+list' ? { kind: 'plus-list', line } : { kind: 'plus-other', line, text: s };
      case '&':
        return { kind: 'forward', line, target: cString(s.slice(1)) };
      default:
        return { kind: 'forward', line, target: cString(s) };
    }
  });
}
