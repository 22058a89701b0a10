// Another process holding SQLite's exclusive lock on a database file, as an admin's `sqlite3` or a long CLI transaction
// would: nobody else reads or writes the file until it is released.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { repoPath } from './paths.js';

const HOLDER = `
import Database from 'better-sqlite3';
const db = new Database(process.argv[1]);
db.exec('BEGIN EXCLUSIVE');
process.stdout.write('locked\\n');
process.stdin.once('data', () => { db.exec('COMMIT'); process.stdout.write('free\\n'); process.exit(0); });
`;

function said(child: ChildProcessWithoutNullStreams, want: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (c: Buffer): void => {
      out += c.toString();
      if (!out.includes(`${want}\n`)) return;
      child.stdout.off('data', on);
      resolve();
    };
    child.stdout.on('data', on);
    child.once('exit', (code) =>
      reject(new Error(`the lock holder exited (${String(code)}) before "${want}": ${out}`)),
    );
  });
}

export interface SqliteLock {
  /** Commits (nothing) and ends the holder: the lock is gone when this resolves. */
  release(): Promise<void>;
  /** Ends the holder whatever it is doing (a test's cleanup). */
  kill(): void;
}

/** Resolves once the other process holds the lock. */
export async function holdSqliteLock(file: string): Promise<SqliteLock> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER, file], { cwd: repoPath() });
  const lock: SqliteLock = {
    release: async () => {
      const free = said(child, 'free');
      child.stdin.write('go\n');
      await free;
    },
    kill: () => void child.kill('SIGKILL'),
  };
  try {
    await said(child, 'locked');
  } catch (err) {
    lock.kill();
    throw err;
  }
  return lock;
}
