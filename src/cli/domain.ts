// quail domain add|del|mod|list|info|alias|unalias: virtual domains in the directory, with qmail's files in step.
import type { Command } from 'commander';
import { asciiLower, errText } from '../core/index.js';
import { Control } from '../control/index.js';
import {
  addAliasDomain,
  changeDomain,
  createDomain,
  deliveryAccount,
  formatPolicy,
  parsePolicy,
  removeAliasDomain,
  removeDomain,
  type Directory,
  type Domain,
  type DomainLimits,
} from '../directory/index.js';
import { action } from './common.js';
import { registerAdmin } from './domain-admin.js';
import { dirOptions, parseCount, parseSize, printJson, withDirectory, type DirOpts } from './directory.js';

interface LimitOpts {
  policy?: string;
  maxMailboxes?: string;
  maxAliases?: string;
  maxForwards?: string;
  quota?: string;
}

function limits(o: LimitOpts): Partial<DomainLimits> {
  return {
    ...(o.maxMailboxes === undefined ? {} : { maxMailboxes: parseCount(o.maxMailboxes, '--max-mailboxes') }),
    ...(o.maxAliases === undefined ? {} : { maxAliases: parseCount(o.maxAliases, '--max-aliases') }),
    ...(o.maxForwards === undefined ? {} : { maxForwards: parseCount(o.maxForwards, '--max-forwards') }),
    ...(o.quota === undefined ? {} : { quotaBytes: parseSize(o.quota, '--quota') }),
  };
}

interface AddOpts {
  account?: string;
  subdomains?: boolean;
  /** `--postmaster ADDRESS`, or false for `--no-postmaster`. */
  postmaster?: string | false;
}

/**
 * RFC 5321 4.5.1: every domain that takes mail must take it for postmaster. Without a mailbox of that name yet,
 * postmaster@<domain> is an alias to the server's postmaster (postmaster@ control/me, which qmail delivers by
 * alias/.qmail-postmaster), as vpopmail's vadddomain makes a postmaster mailbox. Not made when told, or when
 * control/me is this domain itself (the alias would point at itself): then a warning says what to do.
 */
async function postmasterAlias(
  ctx: { root: string; dir: Directory },
  d: Domain,
  want: string | false | undefined,
): Promise<{ target?: string; warning?: string }> {
  if (want === false) return {};
  const me = new Control(ctx.root).me();
  const target = typeof want === 'string' ? want : me === null ? undefined : `postmaster@${me}`;
  const fix = `make one with quail alias add postmaster@${d.name} ADDRESS or quail user add postmaster@${d.name}`;
  if (target === undefined) return { warning: `control/me is missing, so postmaster@${d.name} goes nowhere; ${fix}` };
  const tdom = asciiLower(target.slice(target.lastIndexOf('@') + 1));
  if (typeof want !== 'string' && (tdom === d.name || d.aliases.includes(tdom)))
    return { warning: `control/me (${me ?? ''}) is in ${d.name}, so postmaster@${d.name} is left to you; ${fix}` };
  try {
    await ctx.dir.addAlias(d.name, 'postmaster', [target]);
    return { target };
  } catch (err) {
    return { warning: `postmaster@${d.name} was not made (${errText(err)}); ${fix}` };
  }
}

const withLimits = (c: Command): Command =>
  c
    .option('--policy <policy>', 'unknown addresses: bounce-no-mailbox (default), delete, user@host, mailbox:LOCAL')
    .option('--max-mailboxes <n>', 'limit on mailboxes (none: unlimited)')
    .option('--max-aliases <n>', 'limit on aliases')
    .option('--max-forwards <n>', 'limit on forwarding mailboxes')
    .option('--quota <size>', 'domain quota (e.g. 10G)');

function domainJson(d: Domain): Record<string, unknown> {
  return { ...d, policy: formatPolicy(d.policy), created: d.created.toISOString() };
}

function render(d: Domain, mailboxes: number): string {
  const l = d.limits;
  const lim = (n: number | null): string => (n === null ? 'unlimited' : String(n));
  return [
    `domain:        ${d.name}`,
    `alias domains: ${d.aliases.join(' ') || '-'}`,
    `policy:        ${formatPolicy(d.policy)}`,
    `account:       ${d.account.user} (uid ${d.account.uid}, gid ${d.account.gid})`,
    `mailboxes:     ${mailboxes} (limit ${lim(l.maxMailboxes)})`,
    `limits:        aliases ${lim(l.maxAliases)}, forwards ${lim(l.maxForwards)}, quota ${l.quotaBytes === null ? 'unlimited' : `${l.quotaBytes} bytes`}`,
    `created:       ${d.created.toISOString()}`,
  ]
    .map((x) => `${x}\n`)
    .join('');
}

export function register(program: Command): void {
  const cmd = program.command('domain').description('virtual domains (vadddomain, vdeldomain, vdominfo)');
  dirOptions(
    withLimits(
      cmd
        .command('add <domain>')
        .description('add a domain: directory, rcpthosts, virtualdomains, users/assign, domains/<domain>/'),
    )
      .option('--account <user>', 'unix account its mail is delivered as (default: control/quailuser)')
      .option('--subdomains', 'also take mail for every host below it (.domain in rcpthosts and virtualdomains)')
      .option('--postmaster <address>', 'where postmaster@<domain> goes (default: postmaster@ control/me)')
      .option('--no-postmaster', 'make no postmaster alias (RFC 5321 4.5.1 requires the address to work)'),
  ).action(
    action('domain add', (name: string, o: DirOpts & LimitOpts & AddOpts) =>
      withDirectory(o, async (ctx) => {
        let d = await createDomain(ctx, {
          name,
          account: deliveryAccount(ctx.root, o.account),
          limits: limits(o),
          ...(o.policy === undefined ? {} : { policy: parsePolicy(o.policy) }),
        });
        if (o.subdomains) d = await addAliasDomain(ctx, `.${d.name}`, d.name);
        const pm = await postmasterAlias(ctx, d, o.postmaster);
        if (o.json) printJson({ ...domainJson(d), postmaster: pm.target ?? null });
        else {
          process.stdout.write(
            `added domain ${d.name}${o.subdomains ? ` and every host below it (.${d.name})` : ''}\n`,
          );
          if (pm.target !== undefined) process.stdout.write(`postmaster@${d.name} -> ${pm.target}\n`);
        }
        if (pm.warning !== undefined) process.stderr.write(`quail domain add: warning: ${pm.warning}\n`);
      }),
    ),
  );
  dirOptions(withLimits(cmd.command('mod <domain>').description("change a domain's policy or limits"))).action(
    action('domain mod', (name: string, o: DirOpts & LimitOpts) =>
      withDirectory(o, async (ctx) => {
        const d = await changeDomain(ctx, name, {
          limits: limits(o),
          ...(o.policy === undefined ? {} : { policy: parsePolicy(o.policy) }),
        });
        if (o.json) printJson(domainJson(d));
        else process.stdout.write(render(d, await ctx.dir.countMailboxes(d.name)));
      }),
    ),
  );
  dirOptions(
    cmd
      .command('del <domain>')
      .description('delete a domain, its mailboxes and its files')
      .option('--keep-files', 'keep domains/<domain>/ (the mail) on disk'),
  ).action(
    action('domain del', (name: string, o: DirOpts & { keepFiles?: boolean }) =>
      withDirectory(o, async (ctx) => {
        await removeDomain(ctx, name, o.keepFiles !== true);
        if (o.json) printJson({ deleted: name.toLowerCase() });
        else process.stdout.write(`deleted domain ${name.toLowerCase()}\n`);
      }),
    ),
  );
  dirOptions(cmd.command('list').description('list the domains')).action(
    action('domain list', (o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const all = await dir.listDomains();
        if (o.json) printJson(all.map(domainJson));
        else
          for (const d of all)
            process.stdout.write(`${d.name}${d.aliases.length > 0 ? ` (aliases: ${d.aliases.join(' ')})` : ''}\n`);
      }),
    ),
  );
  dirOptions(cmd.command('info <domain>').description('show a domain')).action(
    action('domain info', (name: string, o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const d = await dir.resolveDomain(name);
        if (!d) {
          process.stderr.write(`quail domain info: no domain ${name} in the directory\n`);
          return 100;
        }
        const n = await dir.countMailboxes(d.name);
        if (o.json) printJson({ ...domainJson(d), mailboxes: n });
        else process.stdout.write(render(d, n));
        return 0;
      }),
    ),
  );
  dirOptions(
    cmd.command('alias <alias> <domain>').description('make <alias> another name for <domain> (vaddaliasdomain)'),
  ).action(
    action('domain alias', (alias: string, target: string, o: DirOpts) =>
      withDirectory(o, async (ctx) => {
        const d = await addAliasDomain(ctx, alias, target);
        if (o.json) printJson(domainJson(d));
        else process.stdout.write(`${alias.toLowerCase()} is now an alias of ${d.name}\n`);
      }),
    ),
  );
  dirOptions(cmd.command('unalias <alias>').description('remove an alias domain')).action(
    action('domain unalias', (alias: string, o: DirOpts) =>
      withDirectory(o, async (ctx) => {
        await removeAliasDomain(ctx, alias);
        if (o.json) printJson({ deleted: alias.toLowerCase() });
        else process.stdout.write(`removed alias domain ${alias.toLowerCase()}\n`);
      }),
    ),
  );
  registerAdmin(cmd);
}
