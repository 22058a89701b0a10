// quail user move ADDR --office NAME: the switch and its record in the directory, then (unless --no-wait) waiting
// while the old office's server carries the Maildir to the new one (src/offices/README.md, "Moving a mailbox").
import type { Command } from 'commander';
import { parseAddress, type MailboxMove } from '../directory/index.js';
import { action, usageError } from './common.js';
import { dirOptions, printJson, withDirectory, type DirOpts } from './directory.js';

interface MoveOpts extends DirOpts {
  office?: string;
  wait?: boolean;
  status?: boolean;
}

const moveJson = (m: MailboxMove): Record<string, unknown> => ({
  ...m,
  started: m.started.toISOString(),
  finished: m.finished === null ? null : m.finished.toISOString(),
});

function describe(m: MailboxMove): string {
  const what = `${m.files} file${m.files === 1 ? '' : 's'} (${m.bytes} bytes)`;
  if (m.finished === null)
    return `moving from ${m.from} to ${m.to} since ${m.started.toISOString()}: ${what} carried so far`;
  return `moved from ${m.from} to ${m.to}, ${what}, finished ${m.finished.toISOString()}${m.note === '' ? '' : ` (${m.note})`}`;
}

export function registerMove(cmd: Command): void {
  dirOptions(
    cmd
      .command('move <address>')
      .description('move a mailbox to another office (issue 16): new mail goes there at once, then its Maildir follows')
      .option('--office <name>', 'the new home office')
      .option('--no-wait', 'return once the move is recorded (the servers carry the Maildir on by themselves)')
      .option('--status', "show the mailbox's moves instead of moving it"),
  ).action(
    action('user move', (address: string, o: MoveOpts) =>
      withDirectory(o, async ({ dir }) => {
        const [local, domain] = parseAddress(address);
        const addr = `${local}@${domain}`;
        if (o.status === true) {
          const moves = await dir.mailboxMoves(domain, local);
          if (o.json) printJson(moves.map(moveJson));
          else if (moves.length === 0) process.stdout.write(`${addr} has not been moved\n`);
          else for (const m of moves) process.stdout.write(`${addr}: ${describe(m)}\n`);
          return;
        }
        if (o.office === undefined) throw usageError('say where to: --office NAME (or --status to see its moves)');
        const { from, to, move } = await dir.moveMailbox(domain, local, o.office);
        if (!o.json)
          process.stdout.write(
            `${addr} now lives at office ${to} (was ${from || 'none'}); new mail goes there. ` +
              (move === null
                ? 'It had no office, so no server is known to hold its Maildir: nothing is carried over\n'
                : `The server of office ${from} carries its Maildir over to ${to}\n`),
          );
        if (move === null || o.wait === false) {
          if (o.json) printJson({ address: addr, from, to, move: move === null ? null : moveJson(move) });
          return;
        }
        // Waiting is only watching: the servers do the work, and Ctrl-C leaves the move going.
        let last = -1;
        for (;;) {
          const m = (await dir.mailboxMoves(domain, local)).find((x) => x.id === move.id);
          if (!m) throw usageError(`the record of the move of ${addr} is gone`);
          if (m.finished !== null) {
            if (o.json) printJson({ address: addr, from, to, move: moveJson(m) });
            else process.stdout.write(`${addr}: ${describe(m)}\n`);
            return;
          }
          if (m.files !== last && !o.json) {
            if (last >= 0) process.stderr.write(`${addr}: ${m.files} files carried so far\n`);
            else process.stderr.write(`waiting for office ${from}'s server (Ctrl-C stops waiting, not the move)\n`);
            last = m.files;
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      }),
    ),
  );
}
