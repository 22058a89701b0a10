// quail held: the held domains (mail kept for customers who are not always online) and their pushes.
import type { Command } from 'commander';
import { Control } from '../control/index.js';
import { findHeld, listHeld } from '../held/index.js';
import { openQueue } from '../queue/index.js';
import { action, addRootOption, resolveRoot, usageError } from './common.js';
import { heldRecords, heldState, registerAdmin } from './held-admin.js';
import { printJson } from './directory.js';

export function register(program: Command): void {
  const held = program
    .command('held')
    .description("held domains: mail kept in a Maildir until the customer's host takes it (RELAYHOST)");
  registerAdmin(held);
  addRootOption(
    held
      .command('list')
      .description('per held domain: its host, messages waiting, the oldest, the lock, the last push and its result')
      .option('--json', 'print JSON for scripts'),
  ).action(
    action('held list', async (flags: { root?: string; json?: boolean }) => {
      const root = resolveRoot(flags.root);
      const all = listHeld(root, new Control(root));
      const recorded = await heldRecords(root);
      const found = new Set(all.map((h) => h.domain));
      const broken = recorded.filter((r) => !found.has(r.name)).map((r) => r.name);
      const states = [];
      for (const h of all)
        states.push({ ...(await heldState(h)), recorded: recorded.some((r) => r.name === h.domain) });
      if (flags.json) {
        printJson({ held: states, incomplete: broken });
        return;
      }
      if (all.length === 0 && broken.length === 0) {
        process.stdout.write(
          'no held domains: add one with quail held add DOMAIN --host HOST, or make the seed layout (a virtualdomains entry whose users/assign home has RELAYHOST and Maildir/)\n',
        );
        return;
      }
      for (const s of states)
        process.stdout.write(
          `${s.domain} host ${s.host} waiting ${s.waiting}${s.oldest === null ? '' : ` oldest ${s.oldest}`} lock ${s.lock} last ${s.lastPush === null ? 'never' : `${s.lastPush} ${s.lastResult ?? ''}`} home ${s.home}${s.recorded ? '' : ' (seed layout)'}\n`,
        );
      for (const b of broken)
        process.stdout.write(`${b} in the directory, but its files are missing: quail directory check --repair\n`);
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
