// quail showctl: values and their sources, unreadable files reported, docs/CONTROL.md in step with the catalogue.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CATALOGUE } from '../control/index.js';
import { CliError } from './common.js';
import { controlDoc, needRoot, showctl } from './showctl.js';
import { repoPath } from '../../test/support/paths.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const DOC = repoPath('docs', 'CONTROL.md');

function root(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'quail-showctl-'));
  mkdirSync(join(dir, 'control'));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, 'control', n), t);
  return dir;
}

/** The value shown for one entry: the text after "name: " on its first line. */
function valueLine(out: string, name: string): string {
  const line = out.split('\n').find((l) => l.startsWith(`${name}: `));
  assert.ok(line !== undefined, `no line for ${name}`);
  return line.slice(name.length + 2);
}

void test('showctl: every catalogue entry, file values marked, defaults named', () => {
  const out = showctl(
    root({
      me: 'mx.test\n',
      locals: 'a.test\nb.test\n',
      virtualdomains: 'v.test:vdom\nx.v.test:\n',
      concurrencyremote: '500\n',
      databytes: 'abc\n',
      queuelifetime: '3600\n',
    }),
  );
  for (const d of CATALOGUE) assert.ok(out.includes(`\n${d.name}: `), d.name);
  for (const d of CATALOGUE) assert.ok(out.includes(`    -- ${d.doc}\n`), `doc of ${d.name}`);
  assert.equal(valueLine(out, 'me'), '[file] mx.test');
  assert.equal(valueLine(out, 'locals'), '[file] a.test');
  assert.match(out, /^locals: \[file\] a\.test\n {4}b\.test\n/m);
  assert.equal(valueLine(out, 'virtualdomains'), '[file] line 1: v.test -> vdom');
  assert.match(out, /^ {4}line 2: x\.v\.test -> \(empty\)$/m);
  assert.equal(valueLine(out, 'envnoathost'), 'mx.test (default: me)');
  assert.equal(valueLine(out, 'bouncefrom'), 'MAILER-DAEMON (default)');
  assert.equal(valueLine(out, 'percenthack'), '(missing, no default)');
  assert.equal(valueLine(out, 'queuelifetime'), '[file] 3600');
  assert.equal(valueLine(out, 'concurrencylocal'), '10 (default)');
  assert.equal(valueLine(out, 'concurrencyremote'), '[file] 120 (the file says 500; at most 120)');
  assert.equal(valueLine(out, 'databytes'), '[file] 36700160 (default: the file does not start with a digit)');
  assert.equal(valueLine(out, 'defaultdelivery'), './Maildir/');
  assert.doesNotMatch(out, /could not be read/);
});

void test('showctl: without me, the literal fallbacks are named', () => {
  const out = showctl(root({}));
  assert.equal(valueLine(out, 'me'), '(missing, no default)');
  assert.equal(valueLine(out, 'bouncehost'), 'bouncehost (default: me is missing, so the word bouncehost)');
  assert.equal(valueLine(out, 'helohost'), '(default: me, which is missing too)');
  assert.equal(valueLine(out, 'locals'), '(default: me, which is missing too)');
});

void test('showctl: unreadable files are reported, the rest still shown; PEM content never printed', () => {
  const dir = root({ me: 'mx.test\n', 'servercert.pem': '-----BEGIN PRIVATE KEY-----\nsecret\n', 'stray-file': 'x\n' });
  mkdirSync(join(dir, 'control', 'locals'));
  symlinkSync('rcpthosts', join(dir, 'control', 'rcpthosts'));
  const out = showctl(dir);
  assert.match(valueLine(out, 'locals'), /^UNREADABLE: unable to read control file .*locals: EISDIR/);
  assert.match(valueLine(out, 'rcpthosts'), /^UNREADABLE: .*ELOOP/);
  assert.equal(valueLine(out, 'me'), '[file] mx.test');
  assert.match(valueLine(out, 'servercert.pem'), /^\[file\] present \(\d+ bytes; not shown\)$/);
  assert.doesNotMatch(out, /secret/);
  assert.match(out, /^stray-file: not a quail control file/m);
  assert.match(out, /^2 control file\(s\) could not be read\.\n$/m);
});

void test('needRoot: a missing root says to run quail init (temporary)', () => {
  const missing = join(mkdtempSync(join(tmpdir(), 'quail-showctl-')), 'nope');
  assert.throws(
    () => needRoot(missing),
    (e: unknown) =>
      e instanceof CliError &&
      e.temporary &&
      e.message === `mail root ${missing} does not exist; run \`quail init --root ${missing}\` first`,
  );
  const file = join(mkdtempSync(join(tmpdir(), 'quail-showctl-')), 'f');
  writeFileSync(file, '');
  assert.throws(() => needRoot(file), /is not a directory/);
});

void test('showctl CLI: exit 0 with output; a missing root exits 111 without a stack trace', () => {
  const ok = spawnSync(process.execPath, [MAIN, 'showctl', '--root', root({ me: 'mx.test\n' })], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^me: \[file\] mx\.test$/m);
  const missing = join(tmpdir(), 'quail-showctl-no-such-root');
  const bad = spawnSync(process.execPath, [MAIN, 'showctl', '--root', missing], { encoding: 'utf8' });
  assert.equal(bad.status, 111);
  assert.equal(
    bad.stderr,
    `quail showctl: fatal: mail root ${missing} does not exist; run \`quail init --root ${missing}\` first\n`,
  );
});

void test('docs/CONTROL.md: the generated part matches the catalogue, one section per file', () => {
  const doc = readFileSync(DOC, 'utf8');
  for (const d of CATALOGUE)
    assert.match(doc, new RegExp(`^## ${d.name.replace(/\./g, '\\.')}$`, 'm'), `docs/CONTROL.md lacks ## ${d.name}`);
  const m = /<!-- generated:start[^\n]*-->\n([\s\S]*)<!-- generated:end -->/.exec(doc);
  assert.ok(m, 'generated markers missing');
  assert.equal(m[1], controlDoc(), 'docs/CONTROL.md is out of date: regenerate it with `quail showctl --doc`');
});

void test('showctl: each line qmail passes over without a word, as control/FILE:LINE: what is wrong', () => {
  const out = showctl(
    root({ me: 'mx.test\n', virtualdomains: 'a.test:a\nb.test b\n c.test:c\n', rcpthosts: 'a.test\na.test:a\n' }),
  );
  assert.match(out, /^control\/virtualdomains:2: "b\.test b" has no ":" and is ignored$/m);
  assert.match(out, /^control\/virtualdomains:3: pattern " c\.test" has a space or tab, so it never matches$/m);
  assert.match(out, /^control\/rcpthosts:2: entry "a\.test:a" has a ":", so it never matches a host/m);
  assert.match(out, /^3 control line\(s\) above do nothing or not what they seem/m);
  assert.doesNotMatch(showctl(root({ me: 'mx.test\n', virtualdomains: 'a.test:a\n:catchall\n' })), /control line/);
});
