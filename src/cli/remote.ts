// quail remote: the remote side's memory of hosts that timed out (qmail-tcpok, qmail-tcpto).
import type { Command } from 'commander';
import { Tcpto, tcptoPath, backoffSeconds } from '../remote/index.js';
import { action, addRootOption, resolveRoot } from './common.js';

export function register(program: Command): void {
  const remote = program.command('remote').description('remote delivery: the memory of hosts that timed out');
  addRootOption(
    remote
      .command('tcpok')
      .description('forget every remote address that timed out, so the next delivery tries them all (qmail-tcpok)'),
  ).action(
    action('remote tcpok', (flags: { root?: string }) => {
      const n = new Tcpto(tcptoPath(resolveRoot(flags.root))).clear();
      process.stdout.write(`quail remote tcpok: forgot ${n} address${n === 1 ? '' : 'es'}\n`);
    }),
  );
  addRootOption(
    remote
      .command('tcpto')
      .description('list remote addresses that timed out and until when they are skipped (qmail-tcpto)'),
  ).action(
    action('remote tcpto', (flags: { root?: string }) => {
      const all = new Tcpto(tcptoPath(resolveRoot(flags.root))).read();
      for (const [ip, e] of all) {
        const until = e.last + backoffSeconds(e.errors);
        process.stdout.write(
          `${ip} timeouts ${e.errors} last ${new Date(e.last * 1000).toISOString()} skipped until ${new Date(until * 1000).toISOString()}\n`,
        );
      }
      if (all.size === 0) process.stdout.write('no remote address is remembered as timed out\n');
    }),
  );
}
