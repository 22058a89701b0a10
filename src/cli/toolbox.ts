// quail preline|condredirect|bouncesaying|except|forward|datemail|mailsubj|qreceipt|maildir2mbox|maildirwatch.
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { environBytes, TOOLS, runTool, writeToolboxBin, type ToolName } from '../toolbox/index.js';
import { resolveRoot } from './common.js';

/** How the tools run quail itself (and what <root>/bin's scripts exec): this node and this main.js. */
const quailCommand = (): string[] => [process.execPath, fileURLToPath(new URL('./main.js', import.meta.url))];

/** Writes <root>/bin's scripts; returns the names written (those that were missing or out of date). */
export const writeBin = (root: string): Promise<string[]> => writeToolboxBin(root, quailCommand());

const SUMMARY: Readonly<Record<ToolName, string>> = {
  preline: "qmail's preline: [-dfr] PROGRAM [ARG...] — feed PROGRAM the message with From_, Return-Path, Delivered-To",
  condredirect: "qmail's condredirect: NEWADDRESS PROGRAM [ARG...] — forward and exit 99 when PROGRAM exits 0",
  bouncesaying: "qmail's bouncesaying: ERROR [PROGRAM [ARG...]] — bounce with ERROR (when PROGRAM exits 0)",
  except: "qmail's except: PROGRAM [ARG...] — run PROGRAM, exit 100 for its 0 and 0 for its 100",
  forward: "qmail's forward: ADDRESS... — queue the message to the addresses (sender $NEWSENDER)",
  datemail: "qmail's datemail: sendmail with a Date field added",
  mailsubj: "qmail's mailsubj: SUBJECT RECIPIENT... — send standard input with that subject",
  qreceipt: "qmail's qreceipt: ADDRESS — answer Notice-Requested-Upon-Delivery-To with a success notice",
  maildir2mbox: "qmail's maildir2mbox: move $MAILDIR's messages to the mbox $MAIL (via $MAILTMP)",
  maildirwatch: "qmail's maildirwatch: list $MAILDIR/new (every 30 s on a terminal, once otherwise)",
};

/**
 * Each tool is a subcommand whose arguments are passed on untouched (qmail's option letters, a program's own
 * options): the arguments are taken from process.argv after the tool's name, not from commander's parse.
 */
export function register(program: Command): void {
  for (const name of TOOLS) {
    program
      .command(name)
      .description(SUMMARY[name])
      .argument('[args...]')
      .allowUnknownOption()
      .helpOption(false)
      .action(async () => {
        const at = process.argv.indexOf(name, 2);
        let raw: Map<string, Buffer> | undefined; // read once, when a tool asks (preline)
        const code = await runTool(
          name,
          {
            argv: process.argv.slice(at + 1),
            env: process.env,
            stdinFd: 0,
            stdout: process.stdout,
            stderr: (t) => process.stderr.write(t),
            root: resolveRoot(undefined),
            quail: quailCommand(),
            envBytes: (n) => (raw ??= environBytes()).get(n),
          },
          process.stdout.isTTY,
        );
        process.exitCode = code;
      });
  }
}
