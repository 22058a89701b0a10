// quail newu: compile users/assign into users/cdb, like qmail-newu (exit 111 and old cdb kept on a bad file).
import type { Command } from 'commander';
import { newu } from '../users/index.js';
import { action, addRootOption, resolveRoot } from './common.js';

export function register(program: Command): void {
  addRootOption(
    program
      .command('newu')
      .description(
        'compile <root>/users/assign into <root>/users/cdb (like qmail-newu); on a bad file the old cdb is kept',
      ),
  ).action(
    action('newu', (opts: { root?: string }) => {
      newu(resolveRoot(opts.root));
      return 0;
    }),
  );
}
