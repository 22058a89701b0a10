// quail newmrh: compile control/morercpthosts into control/morercpthosts.cdb, like qmail-newmrh.
import type { Command } from 'commander';
import { newmrh } from '../users/index.js';
import { action, addRootOption, resolveRoot } from './common.js';

export function register(program: Command): void {
  addRootOption(
    program
      .command('newmrh')
      .description('compile <root>/control/morercpthosts into control/morercpthosts.cdb (like qmail-newmrh)'),
  ).action(
    action('newmrh', (opts: { root?: string }) => {
      newmrh(resolveRoot(opts.root));
      return 0;
    }),
  );
}
