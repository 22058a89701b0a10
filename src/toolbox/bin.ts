// <root>/bin: one small shell script per tool, so `|preline ...` in a .qmail file finds it in the delivery PATH.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TOOLS } from './tools.js';

/** The line that makes a script quail's own, to be kept up to date. */
const MARK = 'written by quail (src/toolbox)';

/** Single-quotes a word for /bin/sh. */
const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Writes `<root>/bin/NAME` for every tool (mode 0755): `exec node main.js NAME "$@"` with QUAIL_ROOT set to this
 * root unless the environment already has one. `quail` (the same command) is written too, so `|quail ...` lines
 * work without quail on the PATH. A script whose text is already right is left alone, and so is any file quail did
 * not write (qmail's own programs when the root is /var/qmail); quail's out-of-date scripts are replaced atomically
 * (the node or quail path changed after an upgrade). Returns the names written.
 */
export async function writeToolboxBin(root: string, quail: readonly string[]): Promise<string[]> {
  const dir = join(root, 'bin');
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const command = quail.map(sq).join(' ');
  const written: string[] = [];
  for (const name of [...TOOLS, 'quail']) {
    const args = name === 'quail' ? '"$@"' : `${name} "$@"`;
    const text =
      `#!/bin/sh\n# ${name}: ${MARK}; rewritten by quail init and quail start.\n` +
      `QUAIL_ROOT="\${QUAIL_ROOT:-${root.replace(/["\\$`]/g, '\\$&')}}"\nexport QUAIL_ROOT\nexec ${command} ${args}\n`;
    const path = join(dir, name);
    const old = await readFile(path, 'utf8').catch(() => null);
    // A file that is not ours (qmail's own /var/qmail/bin/preline, an administrator's script) is never replaced.
    if (old === text || (old !== null && !old.includes(MARK))) continue;
    await writeFile(`${path}.tmp`, text, { mode: 0o755 });
    await chmod(`${path}.tmp`, 0o755);
    await rename(`${path}.tmp`, path);
    written.push(name);
  }
  return written;
}
