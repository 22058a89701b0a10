// Regenerates the generated part of docs/CONTROL.md from the catalogue (`quail showctl --doc`). Run after `npm run build`.
import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
const file = 'docs/CONTROL.md';
const doc = readFileSync(file, 'utf8');
const start = '<!-- generated:start (quail showctl --doc) -->';
const end = '<!-- generated:end -->';
const a = doc.indexOf(start),
  b = doc.indexOf(end);
if (a < 0 || b < 0) throw new Error('docs/CONTROL.md has no generated markers');
const gen = execFileSync(process.execPath, ['dist/cli/main.js', 'showctl', '--doc'], { encoding: 'utf8' });
writeFileSync(file, doc.slice(0, a + start.length) + '\n' + gen.replace(/\n*$/, '\n') + doc.slice(b));
