// quail maildirmake: create a Maildir (DIR, DIR/tmp, DIR/new, DIR/cur, mode 0700); refuses an existing DIR.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { errText } from '../core/index.js';
import { maildirMake } from '../maildir/index.js';
import { action, CliError, usageError } from './common.js';

export function register(program: Command): void {
  program
    .command('maildirmake')
    .description('create a Maildir: DIR and DIR/tmp, DIR/new, DIR/cur, all mode 0700 (fails if DIR exists)')
    .argument('<dir>', 'the Maildir to create')
    .action(
      action('maildirmake', (dir: string) => {
        if (existsSync(dir)) throw usageError(`${dir} already exists; choose a new name or remove it first`);
        try {
          maildirMake(dir);
        } catch (err) {
          const msg = errText(err);
          throw new CliError(`unable to create ${dir}: ${msg}`, true);
        }
      }),
    );
}
