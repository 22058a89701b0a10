// quail alias add|del|list: addresses of a virtual domain delivered to other addresses, Maildirs or programs (valias).
import type { Command } from 'commander';
import { parseAddress, type Alias } from '../directory/index.js';
import { action, usageError } from './common.js';
import { dirOptions, printJson, withDirectory, type DirOpts } from './directory.js';

const line = (a: Alias): string => `${a.local}@${a.domain} -> ${a.targets.join(', ')}\n`;

export function register(program: Command): void {
  const cmd = program.command('alias').description('aliases and forwards of virtual domains (valias)');
  dirOptions(
    cmd
      .command('add <address> <target...>')
      .description('deliver <address> to each target: user@host (forward), /path/Maildir/, or "|program"'),
  ).action(
    action('alias add', (address: string, targets: string[], o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const [local, domain] = parseAddress(address);
        if (!(await dir.getDomain(domain)))
          throw usageError(`no domain ${domain} in the directory; add it with quail domain add ${domain}`);
        const a = await dir.addAlias(domain, local, targets);
        if (o.json) printJson(a);
        else process.stdout.write(line(a));
      }),
    ),
  );
  dirOptions(cmd.command('del <address> [target]').description('remove one target, or the whole alias')).action(
    action('alias del', (address: string, target: string | undefined, o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const [local, domain] = parseAddress(address);
        if (!(await dir.deleteAlias(domain, local, target))) {
          throw usageError(
            target === undefined ? `no alias ${local}@${domain}` : `alias ${local}@${domain} has no target ${target}`,
          );
        }
        if (o.json) printJson({ deleted: `${local}@${domain}`, ...(target === undefined ? {} : { target }) });
        else process.stdout.write(`removed ${target ?? 'alias'} from ${local}@${domain}\n`);
      }),
    ),
  );
  dirOptions(cmd.command('list <domain>').description("list a domain's aliases")).action(
    action('alias list', (domain: string, o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const all = await dir.listAliases(domain);
        if (o.json) printJson(all);
        else for (const a of all) process.stdout.write(line(a));
      }),
    ),
  );
}
