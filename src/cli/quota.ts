// quail quota set ADDRESS|DOMAIN BYTES[,COUNT]: a mailbox's Maildir++ quota, or a domain's total quota.
import type { Command } from 'commander';
import { domainName, parseAddress } from '../directory/index.js';
import { action, usageError } from './common.js';
import { dirOptions, parseCount, parseSize, printJson, withDirectory, type DirOpts } from './directory.js';

/** `BYTES[,COUNT]`: sizes like `50M` or `none`; Maildir++ letters (`1000S,20C`) are accepted too. */
export function parseQuotaArg(text: string): { bytes: number | null; messages: number | null } {
  const [b = '', c, ...rest] = text.split(',');
  if (rest.length > 0 || b === '')
    throw usageError(`quota ${JSON.stringify(text)}: give BYTES or BYTES,COUNT (e.g. 50M,1000 or none)`);
  const bytes = parseSize(b.replace(/^(\d+)S$/i, '$1'), 'quota');
  const messages = c === undefined ? null : parseCount(c.replace(/^(\d+)C$/i, '$1'), 'message count');
  return { bytes, messages };
}

export function register(program: Command): void {
  const cmd = program
    .command('quota')
    .description('mailbox and domain quotas (see src/directory/README.md: grace rule, 90 % warning)');
  dirOptions(
    cmd
      .command('set <address-or-domain> <quota>')
      .description(
        "set user@domain's quota to BYTES[,COUNT] (K/M/G suffixes, none = unlimited), or a domain's total BYTES",
      ),
  ).action(
    action('quota set', (what: string, quota: string, o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const q = parseQuotaArg(quota);
        if (what.includes('@')) {
          const [local, domain] = parseAddress(what);
          const m = await dir.updateMailbox(domain, local, { quotaBytes: q.bytes, quotaMessages: q.messages });
          if (o.json === true)
            printJson({ address: `${m.local}@${m.domain}`, quotaBytes: m.quotaBytes, quotaMessages: m.quotaMessages });
          else
            process.stdout.write(
              `quota of ${m.local}@${m.domain}: ${m.quotaBytes ?? 'unlimited'} bytes, ${m.quotaMessages ?? 'unlimited'} messages\n`,
            );
          return;
        }
        if (q.messages !== null)
          throw usageError('a domain quota is bytes only: give BYTES (the COUNT part is for mailboxes)');
        const d = await dir.updateDomain(domainName(what), { limits: { quotaBytes: q.bytes } });
        if (o.json === true) printJson({ domain: d.name, quotaBytes: d.limits.quotaBytes });
        else process.stdout.write(`quota of domain ${d.name}: ${d.limits.quotaBytes ?? 'unlimited'} bytes\n`);
      }),
    ),
  );
}
