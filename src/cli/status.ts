// quail status: whether quail runs for a root (pid file), its listeners, queue counts and recent errors.
import type { Command } from 'commander';
import { readStatus, renderStatus } from '../start/index.js';
import { action, addRootOption, resolveRoot } from './common.js';

export function register(program: Command): void {
  addRootOption(
    program
      .command('status')
      .description('show whether quail is running, its listeners, queue counts and recent errors')
      .option('--json', 'print the status as JSON'),
  ).action(
    action('status', async (flags: { root?: string; json?: boolean }) => {
      const root = resolveRoot(flags.root);
      const s = await readStatus(root);
      process.stdout.write(flags.json ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(root, s));
      // Like svstat-based checks: 0 when running, 1 when not (scripts can test it).
      return s.running ? 0 : 1;
    }),
  );
}
