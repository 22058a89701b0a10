// quail directory check [--repair] | info, and the helpers every directory command shares (--directory, --json, sizes).
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  checkDrift,
  openDirectory,
  shareWithDeliveryGroup,
  repairDrift,
  SCHEMA_VERSION,
  type Ctx,
  type Directory,
} from '../directory/index.js';
import { listFileDrift, repairListFiles, type ListDrift } from '../lists/index.js';
import { action, addRootOption, resolveRoot, usageError } from './common.js';
import { progressBar } from './progress.js';
import { reloadIfChanged, routingStamp } from './reload.js';

export interface DirOpts {
  root?: string;
  directory?: string;
  json?: boolean;
}

/** --root and --directory URL (default: control/directory, else SQLite in the mail root), plus --json. */
export function dirOptions(cmd: Command): Command {
  return addRootOption(cmd)
    .option(
      '--directory <url>',
      'directory database: postgres://... or sqlite:PATH (default: control/directory, else ROOT/directory.sqlite)',
    )
    .option('--json', 'print JSON for scripts');
}

/** Opens the directory for one command and always closes it; a running quail is told to reload when routing changed. */
export async function withDirectory<T>(o: DirOpts, body: (ctx: Ctx) => Promise<T>): Promise<T> {
  const root = resolveRoot(o.root);
  const dir: Directory = await openDirectory({ root, ...(o.directory === undefined ? {} : { url: o.directory }) });
  const before = routingStamp(root);
  try {
    return await body({ root, dir });
  } finally {
    await dir.close();
    reloadIfChanged(root, before, 'quail');
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `1000`, `50K`, `20M`, `2G` (powers of 1024), or `none`/`unlimited` → null. */
export function parseSize(text: string, what: string): number | null {
  if (/^(none|unlimited|noquota)$/i.test(text)) return null;
  const m = /^(\d+)([KMGT]?)B?$/i.exec(text.trim());
  if (!m)
    throw usageError(`${what} ${JSON.stringify(text)}: give a number of bytes, optionally with K, M, G or T, or none`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m[2] ?? '').toUpperCase()] ?? 1;
  return Number(m[1]) * mult;
}

export function parseCount(text: string, what: string): number | null {
  if (/^(none|unlimited)$/i.test(text)) return null;
  if (!/^\d+$/.test(text)) throw usageError(`${what} ${JSON.stringify(text)}: give a whole number, or none`);
  return Number(text);
}

export function register(program: Command): void {
  const cmd = program.command('directory').description("the virtual-user directory: consistency with qmail's files");
  dirOptions(
    cmd
      .command('check')
      .description('find drift between the directory and rcpthosts, virtualdomains, users/assign, users/cdb, domains/')
      .option('--repair', 'make the files say what the directory says'),
  ).action(
    action('directory check', (o: DirOpts & { repair?: boolean }) =>
      withDirectory(o, async ({ root, dir }) => {
        const bar = progressBar('directory check');
        const tick = (done: number, total: number): void => bar.tick(done, total, 'domains');
        // The mailing lists' .qmail files and directories are checked and repaired with the rest (src/lists).
        const all = async (): Promise<ListDrift[]> => [
          ...(await checkDrift(root, dir, tick).finally(() => bar.stop())),
          ...(await listFileDrift({ root, dir })),
        ];
        const drift = await all();
        if (o.repair && drift.length > 0) {
          await repairDrift(root, dir);
          await repairListFiles({ root, dir });
        }
        const left = o.repair ? await all() : drift;
        if (o.json) printJson({ drift, repaired: o.repair === true && drift.length > 0, remaining: left });
        else {
          for (const d of drift) process.stdout.write(`${d.domain}: ${d.path}: ${d.problem}\n`);
          if (drift.length === 0) process.stdout.write('no drift: the files agree with the directory\n');
          else if (o.repair)
            process.stdout.write(
              left.length === 0 ? `repaired ${drift.length} problem(s)\n` : `${left.length} problem(s) remain\n`,
            );
          else process.stdout.write(`${drift.length} problem(s); run quail directory check --repair to fix them\n`);
        }
        return left.length === 0 ? 0 : 1;
      }),
    ),
  );
  addRootOption(
    cmd
      .command('use')
      .description('make URL the directory of this mail root (control/directory), after opening and migrating it')
      .argument('<url>', 'postgres://user@host/db, sqlite:PATH or a file path'),
  ).action(
    action('directory use', async (url: string, o: { root?: string }) => {
      const root = resolveRoot(o.root);
      const dir = await openDirectory({ root, url });
      const where = dir.describe;
      await dir.close();
      const file = join(root, 'control', 'directory');
      const tmp = `${file}.tmp${process.pid}`;
      writeFileSync(tmp, `${url}\n`, { mode: 0o640 });
      renameSync(tmp, file);
      shareWithDeliveryGroup(root, file);
      process.stdout.write(`control/directory: ${where}\n`);
    }),
  );
  dirOptions(cmd.command('info').description('which database holds the directory, and its schema version')).action(
    action('directory info', (o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const info = {
          backend: dir.describe,
          schemaVersion: await dir.schemaVersion(),
          latest: SCHEMA_VERSION,
          domains: (await dir.listDomains()).length,
        };
        if (o.json) printJson(info);
        else
          process.stdout.write(
            `${info.backend}\nschema version ${info.schemaVersion} (latest ${info.latest})\n${info.domains} domain(s)\n`,
          );
      }),
    ),
  );
}
