// quail import vpopmail DIR | qmail ROOT: bring an old system's domains, mailboxes, aliases or control files in (--dry-run first).
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { deliveryAccount, importQmail, importVpopmail, type ImportReport } from '../directory/index.js';
import { action, addRootOption, resolveRoot, usageError } from './common.js';
import { progressBar } from './progress.js';
import { reloadIfChanged, routingStamp } from './reload.js';
import { dirOptions, printJson, withDirectory, type DirOpts } from './directory.js';

interface ImportOpts extends DirOpts {
  dryRun?: boolean;
  account?: string;
}

function report(rep: ImportReport, o: ImportOpts): number {
  if (o.json) printJson({ dryRun: o.dryRun === true, ...rep });
  else {
    const verb = o.dryRun ? 'would import' : 'imported';
    for (const i of rep.imported) process.stdout.write(`${verb}: ${i}\n`);
    for (const s of rep.skipped) process.stdout.write(`not imported: ${s.what}: ${s.why}\n`);
    process.stdout.write(
      `${rep.imported.length} ${verb}, ${rep.skipped.length} not imported${o.dryRun ? ' (dry run: nothing changed)' : ''}\n`,
    );
  }
  return 0;
}

export function register(program: Command): void {
  const cmd = program
    .command('import')
    .description('import an old vpopmail or qmail installation (try --dry-run first)');
  dirOptions(
    cmd
      .command('vpopmail <dir>')
      .description('a vpopmail domains/ tree: vpasswd files, .qmail-* aliases, quotas, limits, Maildirs')
      .option('--dry-run', 'only report what would be imported')
      .option('--account <user>', 'unix account the imported domains are delivered as (default: control/quailuser)'),
  ).action(
    action('import vpopmail', (dir: string, o: ImportOpts) =>
      withDirectory(o, async (ctx) => {
        const bar = progressBar('import vpopmail');
        try {
          const rep = await importVpopmail(
            ctx,
            sourceDir(dir, "vpopmail's domains/ tree (e.g. /home/vpopmail/domains)"),
            {
              dryRun: o.dryRun === true,
              account: deliveryAccount(ctx.root, o.account),
              progress: bar.tick,
            },
          );
          bar.stop();
          return report(rep, o);
        } finally {
          bar.stop();
        }
      }),
    ),
  );
  addRootOption(
    cmd
      .command('qmail <qmailroot>')
      .description('a qmail root (e.g. /var/qmail): control files merged or copied, users/assign merged')
      .option('--dry-run', 'only report what would be imported')
      .option('--json', 'print JSON for scripts'),
  ).action(
    action('import qmail', (from: string, o: ImportOpts) => {
      const bar = progressBar('import qmail');
      const root = resolveRoot(o.root);
      const before = routingStamp(root);
      const rep = importQmail(root, sourceDir(from, 'a qmail root (e.g. /var/qmail)'), {
        dryRun: o.dryRun === true,
        progress: bar.tick,
      });
      bar.stop();
      reloadIfChanged(root, before, 'quail import qmail');
      return report(rep, o);
    }),
  );
}

/** The directory to import from, absolute; one that is missing or not a directory is the user's mistake (exit 100). */
function sourceDir(dir: string, what: string): string {
  const abs = resolve(dir);
  if (statSync(abs, { throwIfNoEntry: false })?.isDirectory() !== true)
    throw usageError(`${abs} is not a directory: give ${what}`);
  return abs;
}
