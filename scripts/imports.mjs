// Lists which component imports which (docs/ARCHITECTURE.md "Which component may import which"), from src/.
// Usage: node scripts/imports.mjs [--tests] [COMPONENT]  — with a component, also the files behind each edge.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const src = resolve(dirname(new URL(import.meta.url).pathname), '..', 'src');
const args = process.argv.slice(2);
const tests = args.includes('--tests');
const only = args.find((a) => !a.startsWith('--'));

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const edges = new Map(); // "from -> to" -> files
for (const file of walk(src)) {
  if (!tests && file.endsWith('.test.ts')) continue;
  const from = relative(src, file).split('/')[0];
  for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
    const to = relative(src, resolve(dirname(file), m[1])).split('/')[0];
    if (to === from) continue;
    const key = `${from} -> ${to}`;
    if (!edges.has(key)) edges.set(key, new Set());
    edges.get(key).add(relative(src, file));
  }
}
for (const key of [...edges.keys()].sort()) {
  if (only !== undefined && !key.startsWith(`${only} -> `)) continue;
  console.log(only !== undefined ? `${key}: ${[...edges.get(key)].sort().join(', ')}` : key);
}
