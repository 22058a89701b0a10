// Test support: paths in the repository, found from the package root (the nearest package.json above), not the cwd
// and not the compiled file's depth, so a test reads the same file from src/, from build/ or from a fresh clone.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** A path inside the repository: `repoPath('test', 'conformance', 'corpus')`. */
export const repoPath = (...parts: string[]): string => join(repoRoot(), ...parts);
