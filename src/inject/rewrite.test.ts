// Golden tables for qmail-inject's address rewriting (docs/QMAIL.md G.2) and where its settings come from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Control } from '../control/index.js';
import { injectSettings, makeRewriter, parseInjectFlags } from './rewrite.js';
import { tokenize, unquote } from './rfc822.js';

const rw = makeRewriter({ defaultHost: 'mail', defaultDomain: 'example.test', plusDomain: 'plus.test' });

void test('envelope rewriting: golden table', () => {
  const table: Array<[string, string | null]> = [
    // docs/QMAIL.md G.2's own examples [inj-001]
    ['joe', 'joe@mail.example.test'],
    ['bob@host', 'bob@host.example.test'],
    ['dave@host+', 'dave@host.plus.test'],
    ['erin+', 'erin+@mail.example.test'],
    ['carol@host.example.org', 'carol@host.example.org'],
    // [literals] get no domain; neither does a dotted host
    ['x@[127.0.0.1]', 'x@[127.0.0.1]'],
    ['x@[]', 'x@[]'],
    // an argument's local part is quoted first (like qmail's quote2), so a trailing dot stays in it
    ['joe.', 'joe.@mail.example.test'],
    // a trailing @ is dropped, then the rules apply
    ['joe@', 'joe@mail.example.test'],
    // in an argument a source route is part of the (quoted) local part
    ['@r1.test,@r2.test:u@h', '@r1.test,@r2.test:u@h.example.test'],
    // a local part that needs quoting stays one address
    ['joe blow', 'joe blow@mail.example.test'],
    ['joe blow@h.test', 'joe blow@h.test'],
    // the plus rule applies to the host only, after @defaulthost
    ['a+b@host+', 'a+b@host.plus.test'],
    ['u@Host', 'u@Host.example.test'],
    ['a@b@c', 'a@b@c.example.test'],
    ['"odd', '"odd@mail.example.test'], // the local part is quoted for the tokenizer, so any text is fine
    ['x@(unclosed', null], // but the host part must parse
  ];
  for (const [input, expected] of table) assert.equal(rw.envelope(input), expected, input);
});

void test('header addresses: a trailing dot is dropped before the rules apply', () => {
  const t = tokenize('joe.');
  assert.ok(t);
  assert.equal(unquote(rw.rewrite(t)), 'joe@mail.example.test');
  const route = tokenize('@r1.test,@r2.test:u@h');
  assert.ok(route);
  assert.equal(unquote(rw.rewrite(route)), 'u@h.example.test', 'a source route is removed');
  const bad = tokenize('@r1.test');
  assert.ok(bad);
  assert.equal(unquote(rw.rewrite(bad)), '', 'a route without a colon leaves <>');
});

void test('a defaulthost with dots gets no defaultdomain; plusdomain replaces the +', () => {
  const r = makeRewriter({
    defaultHost: 'mx.oracle.test',
    defaultDomain: 'mx.oracle.test',
    plusDomain: 'mx.oracle.test',
  });
  assert.equal(r.envelope('joe'), 'joe@mx.oracle.test');
  assert.equal(r.envelope('bob@host'), 'bob@host.mx.oracle.test');
  assert.equal(r.envelope('dave@host+'), 'dave@host.mx.oracle.test');
});

void test('settings: control files, me, literal fallbacks, env overrides', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-inject-'));
  mkdirSync(join(root, 'control'));
  const none = injectSettings(new Control(root), {});
  assert.deepEqual(
    [none.defaultHost, none.defaultDomain, none.plusDomain, none.idHost, none.mailUser, none.mailHost],
    ['defaulthost', 'defaultdomain', 'plusdomain', 'idhost', 'anonymous', undefined],
  );
  writeFileSync(join(root, 'control', 'me'), 'me.test\n');
  writeFileSync(join(root, 'control', 'defaultdomain'), 'dom.test\n');
  const files = injectSettings(new Control(root), { LOGNAME: 'lg', USER: 'us' });
  assert.deepEqual(
    [files.defaultHost, files.defaultDomain, files.plusDomain, files.idHost, files.mailUser],
    ['me.test', 'dom.test', 'me.test', 'me.test', 'us'],
  );
  const env = injectSettings(new Control(root), {
    QMAILDEFAULTHOST: 'h',
    QMAILDEFAULTDOMAIN: 'd.test',
    QMAILPLUSDOMAIN: 'p.test',
    QMAILIDHOST: 'id.test',
    QMAILUSER: 'qu',
    USER: 'us',
    QMAILHOST: 'qh.test',
    QMAILNAME: 'Q Name',
    QMAILSUSER: 'su',
    QMAILINJECT: 'cf',
  });
  assert.deepEqual(
    [
      env.defaultHost,
      env.defaultDomain,
      env.plusDomain,
      env.idHost,
      env.mailUser,
      env.mailHost,
      env.senderUser,
      env.senderHost,
      env.fullName,
    ],
    ['h', 'd.test', 'p.test', 'id.test', 'qu', 'qh.test', 'su', 'qh.test', 'Q Name'],
  );
  assert.equal(env.flags.nameComment, true);
  assert.equal(env.flags.deleteFrom, true);
  assert.equal(env.flags.deleteMessageId, false);
});

void test('QMAILINJECT letters', () => {
  assert.deepEqual(parseInjectFlags('csfirm'), {
    nameComment: true,
    deleteReturnPath: true,
    deleteFrom: true,
    deleteMessageId: true,
    verp: true,
    messageSender: true,
  });
  assert.deepEqual(Object.values(parseInjectFlags(undefined)), [false, false, false, false, false, false]);
});
