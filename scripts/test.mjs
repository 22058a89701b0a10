// Runs the compiled test files (build/**/*.test.js: src/, test/ and bench/ compiled by tsconfig.json) with node:test, by tier; further arguments filter by substring.
//   --tier unit    (npm test)             needs only Node: unit and in-process tests
//   --tier system  (npm run test:system)  starts quail or needs Debian tools (swaks, Postfix, PostgreSQL, Dovecot, ...)
//   --tier all     (the default when filters are given)
// A test file is in the system tier when one of its first lines is `// tier: system (needs ...)`.
import { openSync, readSync, closeSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

function tierOf(file) {
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(1024);
  const n = readSync(fd, buf, 0, buf.length, 0);
  closeSync(fd);
  return /^\/\/ tier: system\b/m.test(buf.subarray(0, n).toString('utf8')) ? 'system' : 'unit';
}

const args = process.argv.slice(2);
let tier = 'all';
const filters = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--tier') tier = args[++i] ?? '';
  else filters.push(args[i]);
}
if (!['unit', 'system', 'all'].includes(tier)) {
  console.error(`--tier ${tier}: say unit, system or all`);
  process.exit(2);
}
const files = walk('build', [])
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .filter((f) => tier === 'all' || tierOf(f) === tier)
  .sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
