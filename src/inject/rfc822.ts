// RFC 822 header tokens the way qmail-inject sees them: tokenize, walk an address list, print it back folded.
//
// This is the one place where header address syntax is parsed (STYLE.md habit 10). It follows qmail's
// token822 behaviour, quirks included, because the envelope and the rewritten header must match
// qmail-inject byte for byte (docs/QMAIL.md G.2, corpus inj-*):
//  - whitespace between tokens is dropped and re-created on output (one space where two words meet);
//  - comments stay where they are in the output but are never part of an address;
//  - address lists are read from right to left, so the callback sees the last address first;
//  - two words with no comma between them are two addresses;
//  - a folded line is broken after a comma once it would pass 78 characters (qmail's LINELEN 80 minus "\n ").

export type TokenType =
  'atom' | 'quote' | 'literal' | 'comment' | 'dot' | 'comma' | 'at' | 'left' | 'right' | 'colon' | 'semi';

/** A token. `text` is the unescaped content of atoms, quoted strings, [literals] and (comments). */
export interface Token {
  readonly type: TokenType;
  readonly text: string;
}

const SPECIAL: Readonly<Record<string, TokenType>> = {
  '.': 'dot',
  ',': 'comma',
  '@': 'at',
  '<': 'left',
  '>': 'right',
  ':': 'colon',
  ';': 'semi',
};

const tok = (type: TokenType, text = ''): Token => ({ type, text });

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';

/** Characters that end an atom (besides the end of input). */
const endsAtom = (c: string): boolean => isSpace(c) || '(["<>;:@,.'.includes(c);

/** An atom with a control, 8-bit, `)`, `]` or backslash character is printed as a quoted string. */
function atomType(text: string): TokenType {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 32 || c > 126 || c === 0x29 || c === 0x5d || c === 0x5c) return 'quote';
  }
  return 'atom';
}

/**
 * Splits header text (latin1, one char per byte) into tokens. Returns null on a syntax error: an
 * unbalanced `(`, `"` or `[`, or a stray `)` or `]`.
 */
export function tokenize(s: string): Token[] | null {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    const special = SPECIAL[c];
    if (special) {
      out.push(tok(special));
      i++;
    } else if (isSpace(c)) {
      i++;
    } else if (c === ')' || c === ']') {
      return null;
    } else if (c === '(' || c === '"' || c === '[') {
      // Comments nest; quoted strings and literals end at their first unescaped closing character.
      const close = c === '(' ? ')' : c === '"' ? '"' : ']';
      let level = 1;
      let text = '';
      i++;
      for (;;) {
        if (i >= s.length) return null;
        const d = s[i] as string;
        if (d === '\\') {
          i++;
          if (i >= s.length) return null;
          text += s[i];
        } else if (c === '(' && d === '(') {
          level++; // nested parentheses are dropped from the text, as qmail does
        } else if (d === close) {
          level--;
          if (level === 0) break;
        } else {
          text += d;
        }
        i++;
      }
      i++;
      out.push(tok(c === '(' ? 'comment' : c === '"' ? 'quote' : 'literal', text));
    } else {
      // An atom: runs to the next special or space; a backslash takes the next character literally.
      let text = '';
      for (;;) {
        if (s[i] === '\\') {
          i++;
          if (i >= s.length) break;
        }
        text += s[i];
        i++;
        if (i >= s.length || endsAtom(s[i] as string)) break;
      }
      out.push(tok(atomType(text), text));
    }
  }
  return out;
}

/** Rewrites one address (its tokens in order, never comments); returns the tokens to print instead. */
export type AddressCallback = (address: Token[]) => Token[];

/**
 * Walks an address list from right to left (as qmail does), handing each address to `callback` and
 * building the output token list. The first `skip` tokens (a header's `Name` and `:`) are copied as they
 * are. Returns null on a syntax error (a `;` or `:` out of place, a `>` without `<`).
 */
export function addressList(tokens: readonly Token[], callback: AddressCallback, skip = 0): Token[] | null {
  const out: Token[] = []; // built reversed
  let addr: Token[] = []; // the pending address, reversed
  let inGroup = false;
  let wordOk = true;
  let t = tokens.length - 1;
  const at = (k: number): Token => tokens[k] as Token;
  const flush = (): void => {
    if (addr.length === 0) return;
    const rewritten = callback(addr.reverse());
    for (let k = rewritten.length - 1; k >= 0; k--) out.push(rewritten[k] as Token);
    addr = [];
  };
  const flushComma = (): void => {
    if (addr.length === 0) return;
    flush();
    out.push(tok('comma'));
  };
  while (t >= skip) {
    const cur = at(t);
    switch (cur.type) {
      case 'semi':
        flushComma();
        if (inGroup) return null;
        inGroup = true;
        wordOk = true;
        out.push(cur);
        t--;
        break;
      case 'colon':
        // Start of a group: the group's name (everything back to the previous comma) is copied verbatim.
        flush();
        if (!inGroup) return null;
        inGroup = false;
        while (t >= skip && at(t).type !== 'comma') out.push(at(t--));
        if (t >= skip) out.push(at(t--));
        wordOk = true;
        break;
      case 'right': {
        flushComma();
        out.push(at(t--));
        while (t >= skip && at(t).type !== 'left') addr.push(at(t--));
        // The address is used even when empty: <> is a real (null) address.
        const rewritten = callback(addr.reverse());
        for (let k = rewritten.length - 1; k >= 0; k--) out.push(rewritten[k] as Token);
        addr = [];
        if (t < skip) return null;
        out.push(at(t--));
        // The phrase before `<`: words, comments and the dots and @s a sloppy writer put there.
        while (t >= skip && ['comment', 'atom', 'quote', 'at', 'dot'].includes(at(t).type)) out.push(at(t--));
        wordOk = false;
        break;
      }
      case 'atom':
      case 'quote':
      case 'literal':
        if (!wordOk) flushComma();
        wordOk = false;
        addr.push(at(t--));
        break;
      case 'comment':
        // A comment is lexically a space: it does not separate words into addresses.
        out.push(at(t--));
        break;
      case 'comma':
        flush();
        wordOk = true;
        out.push(at(t--));
        break;
      default:
        wordOk = true;
        addr.push(at(t--));
    }
  }
  flush();
  for (let k = Math.min(skip, tokens.length) - 1; k >= 0; k--) out.push(at(k));
  return out.reverse();
}

/** The address as an envelope string: words and specials joined, comments dropped, literals in brackets. */
export function unquote(tokens: readonly Token[]): string {
  let s = '';
  for (const t of tokens) {
    switch (t.type) {
      case 'atom':
      case 'quote':
        s += t.text;
        break;
      case 'literal':
        s += `[${t.text}]`;
        break;
      case 'comment':
        break;
      default:
        s += SPECIAL_CHAR[t.type];
    }
  }
  return s;
}

const SPECIAL_CHAR: Readonly<Record<TokenType, string>> = {
  atom: '',
  quote: '',
  literal: '',
  comment: '',
  dot: '.',
  comma: ',',
  at: '@',
  left: '<',
  right: '>',
  colon: ':',
  semi: ';',
};

const WORDS: ReadonlySet<TokenType> = new Set(['atom', 'literal', 'quote', 'comment']);

/** Where printing puts a space between two tokens. */
function needSpace(prev: TokenType | undefined, next: TokenType): boolean {
  if (prev === undefined) return false;
  if (prev === 'colon' || prev === 'comma') return true;
  if (next === 'left') return true;
  return WORDS.has(prev) && WORDS.has(next);
}

const escapeText = (text: string): string => text.replace(/["[\]()\\\r\n]/g, (c) => `\\${c}`);

/** qmail-inject's line length for folded address headers. */
const LINE_LEN = 80;

/**
 * Prints tokens as a header field ending in "\n". After each comma a line break is considered: the
 * previous tentative break is dropped when the joined line (counted with the break's two characters)
 * stays within `lineLen`; continuation lines start with two spaces.
 */
export function unparse(tokens: readonly Token[], lineLen = LINE_LEN): string {
  let out = '';
  let lineStart = 0;
  let pendingBreak = -1; // index of the tentative "\n " that ends the line so far
  const breakHere = (): void => {
    if (pendingBreak >= 0 && (lineLen === 0 || out.length - lineStart <= lineLen)) {
      out = out.slice(0, pendingBreak) + out.slice(pendingBreak + 2);
    } else if (pendingBreak >= 0) {
      lineStart = pendingBreak + 1;
    }
    pendingBreak = out.length;
    out += '\n ';
  };
  let prev: TokenType | undefined;
  for (const t of tokens) {
    if (needSpace(prev, t.type)) out += ' ';
    prev = t.type;
    switch (t.type) {
      case 'comma':
        out += ',';
        breakHere();
        break;
      case 'atom':
        out += escapeText(t.text);
        break;
      case 'quote':
        out += `"${escapeText(t.text)}"`;
        break;
      case 'literal':
        out += `[${escapeText(t.text)}]`;
        break;
      case 'comment':
        out += `(${escapeText(t.text)})`;
        break;
      default:
        out += SPECIAL_CHAR[t.type];
    }
  }
  breakHere();
  return out.slice(0, -1);
}
