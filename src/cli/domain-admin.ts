// quail domain admin add|remove|list: domain administrators (issue 19), through src/access like the web admin.
import type { Command } from 'commander';
import { perform, type Principal } from '../access/index.js';
import { action } from './common.js';
import { dirOptions, printJson, withDirectory, type DirOpts } from './directory.js';

/** Whoever can open the directory read-write at the command line is the system administrator. */
const SYSTEM: Principal = { kind: 'system' };

export function registerAdmin(domain: Command): void {
  const cmd = domain
    .command('admin')
    .description('domain administrators: mailboxes that manage a domain in the web admin (issue 19)');
  dirOptions(
    cmd
      .command('add <domain> <login>')
      .description(
        'let mailbox LOGIN (user@domain, of any domain) administer DOMAIN: its mailboxes, aliases, catch-all, quotas',
      ),
  ).action(
    action('domain admin add', (domain: string, login: string, o: DirOpts) =>
      withDirectory(o, async (ctx) => {
        const done = await perform(ctx, SYSTEM, { op: 'admin.add', domain, login });
        if (o.json) printJson(await ctx.dir.listDomainAdmins(domain));
        else process.stdout.write(`${done}\n`);
      }),
    ),
  );
  dirOptions(cmd.command('remove <domain> <login>').description('LOGIN no longer administers DOMAIN')).action(
    action('domain admin remove', (domain: string, login: string, o: DirOpts) =>
      withDirectory(o, async (ctx) => {
        const done = await perform(ctx, SYSTEM, { op: 'admin.remove', domain, login });
        if (o.json) printJson({ removed: { domain: domain.toLowerCase(), login: login.toLowerCase() } });
        else process.stdout.write(`${done}\n`);
      }),
    ),
  );
  dirOptions(
    cmd
      .command('list [domain]')
      .description("a domain's administrators (all domains without DOMAIN): DOMAIN LOGIN lines"),
  ).action(
    action('domain admin list', (domain: string | undefined, o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const rows = await dir.listDomainAdmins(domain);
        if (o.json) printJson(rows.map((r) => ({ ...r, created: r.created.toISOString() })));
        else for (const r of rows) process.stdout.write(`${r.domain} ${r.login}\n`);
      }),
    ),
  );
}
