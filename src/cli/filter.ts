// quail filter: the built-in QMAILQUEUE program (clamd INSTREAM, spamd CHECK; reject, tag or quarantine), then queue.
import type { Command } from 'commander';
import { runBuiltinFilter } from '../filter/index.js';
import { resolveRoot } from './common.js';

const DESCRIPTION = `a qmail-queue program (message on fd 0, envelope on fd 1) that asks clamd and spamd and then
refuses, tags, quarantines or queues the message; for QMAILQUEUE in tcp.smtp (through a two-line script:
#!/bin/sh / exec quail filter). Settings from the environment (tcp.smtp):
  QUAIL_CLAMD=/run/clamav/clamd.ctl or host:port   QUAIL_VIRUSACTION=reject|quarantine (default reject)
  QUAIL_SPAMD=host:port (default port 783)          QUAIL_SPAMACTION=reject|tag|quarantine (default tag)
  QUAIL_SCANTIMEOUT=seconds the scans of one message may take together (default 60; they always end
  before QUAIL_FILTERTIMEOUT, default 300, and a warning says so when it does not fit)
exit codes as qmail-queue: 0 queued (or quarantined), 31 refused, 55 misconfigured, 71 a scanner failed`;

export function register(program: Command): void {
  program
    .command('filter')
    .description(DESCRIPTION)
    .option('--root <dir>', 'mail root (default: $QUAIL_ROOT, else ./var/quail)')
    .action(async (opts: { root?: string }) => {
      process.exitCode = await runBuiltinFilter({
        root: resolveRoot(opts.root),
        message: process.stdin,
        envelopeFd: 1,
        env: process.env,
        stderr: (t) => process.stderr.write(t),
      });
    });
}
