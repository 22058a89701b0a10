// The directory's own users/cdb compile equals qmail-newu's (quail newu) byte for byte; the append fast paths of
// tier: system (needs cdb)
// editMap and editAssign give exactly what the full rebuild gives.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newu } from '../users/index.js';
import { addAliasDomain, createDomain, removeDomain } from './admin.js';
import { editAssign, editMap } from './files.js';
import { openDirectory } from './open.js';

const base = mkdtempSync(join(tmpdir(), 'quail-dir-sync-'));
after(() => rmSync(base, { recursive: true, force: true }));
const account = { user: 'mail', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

void test('users/cdb from a domain add, alias and removal is what newu makes of the same users/assign', async () => {
  const root = join(base, 'newu');
  mkdirSync(join(root, 'control'), { recursive: true });
  mkdirSync(join(root, 'users'), { recursive: true });
  writeFileSync(join(root, 'control', 'me'), 'mx.test\n');
  writeFileSync(join(root, 'control', 'rcpthostsmax'), '2\n');
  // Lines an administrator wrote: a simple assignment, wildcards with different last characters, upper case.
  writeFileSync(
    join(root, 'users', 'assign'),
    '=Joe.Shmoe:joe:503:78:/home/joe:::\n+sales-:sales:504:78:/home/sales:-::\n+LISTS_:lists:505:78:/home/lists:::\n.\n',
  );
  const dir = await openDirectory({ root });
  try {
    const cdb = join(root, 'users', 'cdb');
    const sameAsNewu = (what: string): void => {
      const ours = readFileSync(cdb);
      newu(root);
      assert.ok(readFileSync(cdb).equals(ours), `${what}: users/cdb differs from newu's`);
    };
    const c = { root, dir };
    for (const name of ['a.test', 'b.test', 'c.test', 'd.test']) await createDomain(c, { name, account });
    sameAsNewu('after four adds');
    await addAliasDomain(c, 'alias.test', 'c.test');
    sameAsNewu('after an alias domain');
    await removeDomain(c, 'b.test', false);
    sameAsNewu('after a removal');
    assert.match(
      readFileSync(join(root, 'users', 'assign'), 'latin1'),
      /^=Joe\.Shmoe:joe:503:78:\/home\/joe:::\n\+sales-:/,
    );
  } finally {
    await dir.close();
  }
});

/** The full rebuild editMap does when a line changes: every line scanned, the text joined again. */
function mapReference(text: string | null, set: ReadonlyMap<string, string>, remove: readonly string[]): string | null {
  const lines = text === null || text === '' ? [] : text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const rm = new Set(remove.map((r) => r.toLowerCase()));
  const done = new Set<string>();
  const out: string[] = [];
  for (const l of lines) {
    const i = l.indexOf(':');
    const key = i < 0 ? null : l.slice(0, i).trim().toLowerCase();
    if (key !== null && rm.has(key)) continue;
    if (key !== null && set.has(key)) {
      if (!done.has(key)) out.push(`${key}:${set.get(key) ?? ''}`);
      done.add(key);
      continue;
    }
    out.push(l);
  }
  for (const [k, v] of set) if (!done.has(k)) out.push(`${k}:${v}`);
  if (out.length === lines.length && out.every((l, i) => l === lines[i])) return null;
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** The full rebuild editAssign does: lines before the first `.` line edited, new ones inserted before it. */
function assignReference(text: string | null, set: readonly string[], remove: readonly string[]): string | null {
  const lines = text === null || text === '' ? [] : text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const keyOf = (l: string): string => l.slice(0, l.indexOf(':') + 1).toLowerCase();
  const rm = new Set(remove.map((p) => `+${p}-:`.toLowerCase()));
  const want = new Map(set.map((l) => [keyOf(l), l]));
  const out: string[] = [];
  let dot = -1;
  for (const l of lines) {
    if (dot < 0 && l.startsWith('.')) {
      dot = out.length;
      out.push(l);
    } else if (dot < 0 && rm.has(keyOf(l))) {
      continue;
    } else if (dot < 0 && want.has(keyOf(l))) {
      out.push(want.get(keyOf(l)) ?? l);
      want.delete(keyOf(l));
    } else out.push(l);
  }
  if (dot < 0) out.push(...want.values(), '.');
  else out.splice(dot, 0, ...want.values());
  if (out.length === lines.length && out.every((l, i) => l === lines[i])) return null;
  return `${out.join('\n')}\n`;
}

void test('editMap: the append fast path gives what the full rebuild gives', () => {
  const texts = [
    null,
    '',
    'a.test:a.test\n',
    'a.test:a.test',
    'a.test:a.test\n\n# note\nB.Test:b.test\n',
    'x\nno colon\n',
    'a.test:a.test\na.test:a.test\n',
    '\n',
  ];
  const sets: Array<Map<string, string>> = [
    new Map<string, string>(),
    new Map([['n.test', 'n.test']]),
    new Map([['a.test', 'a.test']]),
    new Map([
      ['b.test', 'b.test'],
      ['z.test', 'z.test'],
    ]),
    new Map([['a.test', 'other']]),
  ];
  const removes = [[], ['a.test'], ['B.TEST'], ['gone.test']];
  for (const t of texts)
    for (const s of sets)
      for (const r of removes) {
        assert.equal(editMap(t, s, r), mapReference(t, s, r), JSON.stringify([t, [...s], r]));
      }
});

void test('editAssign: inserting before the `.` line without a rebuild gives what the full rebuild gives', () => {
  const line = (d: string): string => `+${d}-:mail:1:1:/r/domains/${d}:-::`;
  const texts = [
    null,
    '',
    '.\n',
    '.',
    `${line('a.test')}\n.\n`,
    `${line('a.test')}\n.`,
    `${line('a.test')}\n`,
    `${line('a.test')}`,
    `=joe:joe:1:1:/home/joe:::\n${line('a.test')}\n.\nafter the dot\n`,
    `${line('A.Test')}\n${line('b.test')}\n.\n`,
  ];
  const sets = [
    [],
    [line('n.test')],
    [line('a.test')],
    [line('a.test').replace(':1:1:', ':2:2:')],
    [line('b.test'), line('z.test')],
  ];
  const removes = [[], ['a.test'], ['B.TEST'], ['gone.test']];
  for (const t of texts)
    for (const s of sets)
      for (const r of removes) {
        assert.equal(editAssign(t, s, r), assignReference(t, s, r), JSON.stringify([t, s, r]));
      }
});
