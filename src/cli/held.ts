// quail held: the held domains (mail kept for customers who are not always online) and their pushes.
import type { Command } from 'commander';
import { Control } from '../control/index.js';
import { findHeld, listHeld, lockStatus, oldest, waiting } from '../held/index.js';
import { openQueue } from '../queue/index.js';
import { action, addRootOption, resolveRoot, usageError } from './common.js';

export function register(program: Command): void {
  const held = program
    .command('held')
    .description("held domains: mail kept in a Maildir until the customer's host takes it (RELAYHOST)");
  addRootOption(
    held
      .command('list')
      .description('per held domain: its host, messages waiting, the oldest, whether a push holds the lock now'),
  ).action(
    action('held list', async (flags: { root?: string }) => {
      const root = resolveRoot(flags.root);
      const all = listHeld(root, new Control(root));
      if (all.length === 0) {
        process.stdout.write(
          'no held domains: a held domain is a virtualdomains entry whose users/assign home has RELAYHOST and Maildir/\n',
        );
        return;
      }
      for (const h of all) {
        const n = await waiting(h.maildir);
        const old = await oldest(h.maildir);
        const lock = await lockStatus(h.lockPath);
        process.stdout.write(
          `${h.domain} host ${h.relayhost} waiting ${n}${old !== undefined ? ` oldest ${new Date(old * 1000).toISOString()}` : ''} lock ${lock === 'busy' ? 'held (a push is running)' : 'free'} home ${h.home}\n`,
        );
      }
    }),
  );
  addRootOption(
    held
      .command('flush')
      .description('ask the running quail start to push a held domain (or every one) now')
      .argument('[domain]', 'the held domain (default: every held domain)'),
  ).action(
    action('held flush', async (domain: string | undefined, flags: { root?: string }) => {
      const root = resolveRoot(flags.root);
      if (domain !== undefined && findHeld(root, new Control(root), domain) === undefined)
        throw usageError(
          `${domain} is not held here: it needs a virtualdomains entry, a users/assign home with RELAYHOST and Maildir/ (quail held list shows the held ones)`,
        );
      const q = await openQueue(root, { create: false });
      try {
        const n = await q.triggerCounted('flush', domain);
        process.stdout.write(
          n > 0
            ? `push requested${domain !== undefined ? ` for ${domain}` : ''}: ${n} process(es) woken\n`
            : 'quail start is not running: nothing to wake; run quail maildirsmtp for a push without it\n',
        );
      } finally {
        q.close();
      }
    }),
  );
}
