// Golden tables for the RFC 822 tokenizer, the right-to-left address list walk and folded printing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressList, tokenize, unparse, unquote, type Token } from './rfc822.js';

const show = (ts: Token[] | null): string | null =>
  ts === null
    ? null
    : ts
        .map((t) =>
          t.text === '' && !['atom', 'quote', 'literal', 'comment'].includes(t.type) ? t.type : `${t.type}:${t.text}`,
        )
        .join(' ');

void test('tokenize: golden table', () => {
  const table: Array<[string, string | null]> = [
    ['joe', 'atom:joe'],
    ['joe@host.dom', 'atom:joe at atom:host dot atom:dom'],
    ['"Quoted Name" <q@x>', 'quote:Quoted Name left atom:q at atom:x right'],
    ['a (comment (nested) here) b', 'atom:a comment:comment nested here atom:b'],
    ['x@[1.2.3.4]', 'atom:x at literal:1.2.3.4'],
    ['"a\\"b"@h', 'quote:a"b at atom:h'],
    ['a\\ b', 'atom:a b'], // an escaped space stays inside the atom
    ['g: a, b;', 'atom:g colon atom:a comma atom:b semi'],
    ['ab)c', 'quote:ab)c'], // `)` inside an atom makes it print as a quoted string
    ['dave@host+', 'atom:dave at atom:host+'],
    ['  \t\n ', ''],
    ['(unclosed', null],
    ['"unclosed', null],
    ['[unclosed', null],
    [') stray', null],
    ['] stray', null],
  ];
  for (const [input, expected] of table) assert.equal(show(tokenize(input)), expected, input);
});

/** Marks each address the walk finds with `!` and records the order in which they were seen. */
function walk(field: string): { out: string | null; seen: string[] } {
  const seen: string[] = [];
  const t = tokenize(field);
  assert.ok(t, field);
  const out = addressList(
    t,
    (a) => {
      seen.push(unquote(a));
      return [...a, { type: 'atom', text: '!' }];
    },
    2,
  );
  return { out: out === null ? null : unparse(out), seen };
}

void test('addressList: golden table (rewritten field, addresses in the order qmail hands them out)', () => {
  const table: Array<[string, string | null, string[]]> = [
    ['To: a, b, c\n', 'To: a !, b !, c !\n', ['c', 'b', 'a']],
    ['To: Joe <joe@h>\n', 'To: Joe <joe@h !>\n', ['joe@h']],
    ['To: joe@h (Joe)\n', 'To: joe@h ! (Joe)\n', ['joe@h']],
    // A comment before the address ends up after it (it is output where the walk meets it).
    ['To: (Joe) joe\n', 'To: joe ! (Joe)\n', ['joe']],
    // Two words without a comma are two addresses.
    ['To: a b\n', 'To: a !, b !\n', ['b', 'a']],
    ['To: list: a, b;, c\n', 'To: list: a !, b !;, c !\n', ['c', 'b', 'a']],
    ['To: empty:;\n', 'To: empty: ;\n', []], // a space always follows a colon on output
    ['To: <>\n', 'To: <!>\n', ['']],
    ['To: "Last, First" <lf@h>\n', 'To: "Last, First" <lf@h !>\n', ['lf@h']],
    ['To: <@r1,@r2:u@h>\n', 'To: <@r1, @r2: u@h !>\n', ['@r1,@r2:u@h']], // printed with qmail's spacing
    ['To: a;\n', 'To: a !;\n', ['a']], // an unopened group is tolerated, as in qmail
    ['To: a:\n', null, []], // `:` outside a group
    ['To: a>\n', null, []], // `>` without `<`
    ['To:\n', 'To:\n', []],
  ];
  for (const [input, out, seen] of table) {
    const r = walk(input);
    assert.equal(r.out, out, input);
    if (out !== null) assert.deepEqual(r.seen, seen, input);
  }
});

void test('unparse: folds after a comma once a line would pass 78 characters, continuation indented two spaces', () => {
  const field =
    'To: joe@mail.example.test, bob@host.example.test, carol@host.example.org, dave@host.plus.test, erin+@mail.example.test\n';
  const t = tokenize(field);
  assert.ok(t);
  assert.equal(
    unparse(t),
    'To: joe@mail.example.test, bob@host.example.test, carol@host.example.org,\n  dave@host.plus.test, erin+@mail.example.test\n',
  );
  // Exactly 78 characters including the comma fit; one more does not.
  const a = 'x'.repeat(78 - 'To: '.length - ',y'.length - 1 - 1);
  const fits = tokenize(`To: ${a}, y,z\n`);
  assert.ok(fits);
  assert.equal(unparse(fits).split('\n')[0], `To: ${a}, y,`);
  const over = tokenize(`To: ${a}x, y,z\n`);
  assert.ok(over);
  assert.equal(unparse(over), `To: ${a}x,\n  y, z\n`);
  // Quoted strings, literals and comments are re-escaped.
  const q = tokenize('X: "a\\"b" (c\\)d) [1.2]\n');
  assert.ok(q);
  assert.equal(unparse(q), 'X: "a\\"b" (c\\)d) [1.2]\n');
});

void test('unquote: comments dropped, literals bracketed, quoted text bare', () => {
  const t = tokenize('"joe blow" (c) @ [127.0.0.1]');
  assert.ok(t);
  assert.equal(unquote(t), 'joe blow@[127.0.0.1]');
});
