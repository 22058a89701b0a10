// Test and bench helper: a throw-away PostgreSQL cluster (initdb into a temp dir, 127.0.0.1 on a free port), or why not.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { freePort } from './start.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface Cluster {
  /** `postgres://quail@127.0.0.1:PORT/DB` for a new, empty database. */
  newDatabase(): Promise<string>;
  stop(): void;
}

/** /usr/lib/postgresql/<newest>/bin, or null. */
export function findPgBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(base, v, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

export interface ClusterOptions {
  /** fsync on (the server's default): a commit waits for the disk. Off unless asked (tests want speed, not durability). */
  readonly fsync?: boolean;
}

/**
 * Starts a cluster as the `postgres` account when running as root (PostgreSQL refuses root), else as the
 * invoking user. Throws with the reason when it cannot (binaries missing, initdb failed...).
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const bin = findPgBin();
  if (bin === null) {
    throw new Error(
      'PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; install them with apt-get install -y postgresql',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'quail-pg-'));
  const root = process.getuid?.() === 0;
  const as = (cmd: string, args: string[]): string[] =>
    root ? ['runuser', '-u', 'postgres', '--', cmd, ...args] : [cmd, ...args];
  if (root) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0)
      throw new Error(
        'running as root but there is no postgres account to run the cluster as (apt-get install -y postgresql makes it)',
      );
    const uid = Number(id.stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const run = (cmd: string, args: string[]): void => {
    const [c = '', ...a] = as(cmd, args);
    execFileSync(c, a, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  const port = await freePort();
  run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'quail', '--no-sync', '-E', 'UTF8', '--locale=C']);
  run(join(bin, 'pg_ctl'), [
    '-D',
    data,
    '-l',
    join(dir, 'log'),
    '-w',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=${opts.fsync === true ? 'on' : 'off'}`,
    'start',
  ]);
  let n = 0;
  const admin = `postgres://quail@127.0.0.1:${port}/postgres`;
  return {
    async newDatabase(): Promise<string> {
      const name = `t${process.pid}_${++n}`;
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return `postgres://quail@127.0.0.1:${port}/${name}`;
    },
    stop(): void {
      try {
        run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
