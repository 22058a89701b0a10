// quail office add|list|remove: the offices of a directory shared by several servers (issue 16, src/offices).
import type { Command } from 'commander';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { Office } from '../directory/index.js';
import { parseHostPort } from '../held/index.js';
import { errText } from '../core/index.js';
import { badOffice, officeExport, writeExport } from '../offices/index.js';
import { action, usageError } from './common.js';
import { dirOptions, printJson, withDirectory, type DirOpts } from './directory.js';

const officeJson = (o: Office): Record<string, unknown> => ({ ...o, created: o.created.toISOString() });

/** `HOST` or `HOST:PORT` (an IPv6 address in brackets: `[::1]:25`), read as held mail's targets are (src/held). */
function officeHostPort(text: string): { host: string; port: number } {
  try {
    const { host, port } = parseHostPort(text);
    // an office's host is written into smtproutes, where an IPv6 address keeps its brackets
    return { host: isIP(host) === 6 ? `[${host}]` : host, port };
  } catch (err) {
    throw usageError(`the office's SMTP server: ${errText(err)}`);
  }
}

export function register(program: Command): void {
  const cmd = program.command('office').description('offices: one domain served by several servers (shared directory)');
  dirOptions(
    cmd
      .command('add <name> <host[:port]>')
      .description('add an office and its SMTP server for inter-office mail')
      .option('--tls <policy>', 'STARTTLS to this office: verify (required, system CAs) or /path/ca.pem (required)'),
  ).action(
    action('office add', (name: string, hostPort: string, o: DirOpts & { tls?: string }) =>
      withDirectory(o, async ({ dir }) => {
        const { host, port } = officeHostPort(hostPort);
        const office = await dir.addOffice({ name, host, port, ...(o.tls === undefined ? {} : { tls: o.tls }) });
        if (o.json) printJson(officeJson(office));
        else process.stdout.write(`added office ${office.name} (${office.host}:${office.port})\n`);
      }),
    ),
  );
  dirOptions(cmd.command('list').description('list the offices and how many mailboxes each holds')).action(
    action('office list', (o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const offices = await dir.listOffices();
        const count = new Map<string, number>();
        for (const h of await dir.mailboxHomes()) count.set(h.office, (count.get(h.office) ?? 0) + 1);
        if (o.json) {
          printJson(offices.map((x) => ({ ...officeJson(x), mailboxes: count.get(x.name) ?? 0 })));
          return;
        }
        for (const x of offices) {
          // A row another office wrote may hold a newline or a terminal's escape: such a row is shown quoted.
          const why = badOffice(x);
          if (why !== undefined)
            process.stdout.write(
              `${JSON.stringify(x.name)}\t${JSON.stringify(x.host)}:${String(x.port)}\t${JSON.stringify(x.tls)}\t${count.get(x.name) ?? 0} mailboxes\trefused here: ${why}\n`,
            );
          else
            process.stdout.write(
              `${x.name}\t${x.host}:${x.port}\t${x.tls === '' ? 'tls-when-offered' : `tls=${x.tls}`}\t${count.get(x.name) ?? 0} mailboxes\n`,
            );
        }
        const none = count.get('') ?? 0;
        if (offices.length > 0 && none > 0)
          process.stdout.write(`(${none} mailboxes have no office: every server delivers them itself)\n`);
      }),
    ),
  );
  dirOptions(
    cmd
      .command('export')
      .description(
        'write what a plain qmail+vpopmail server at an office needs to take part (.qmail forwards, smtproutes)',
      )
      .requiredOption('--office <name>', 'the office that runs qmail')
      .requiredOption('--dir <dir>', 'where to write the files (made if missing)'),
  ).action(
    action('office export', (o: DirOpts & { office: string; dir: string }) =>
      withDirectory(o, async ({ dir }) => {
        const { files, refused } = await officeExport(dir, o.office);
        const out = resolve(o.dir);
        writeExport(out, files);
        // Rows of the shared directory that failed the local checks: named, left out, and exit 100 (README).
        for (const r of refused) process.stderr.write(`quail office export: ${r}\n`);
        if (o.json) printJson({ dir: out, files: files.map((f) => f.path), refused });
        else
          process.stdout.write(
            `wrote ${files.length} files for office ${o.office.trim().toLowerCase()} under ${out}; see README.txt there\n`,
          );
        if (refused.length === 0) return 0;
        process.stderr.write(
          `quail office export: ${refused.length} row(s) of the shared directory left out (above); the rest was written\n`,
        );
        return 100;
      }),
    ),
  );
  dirOptions(cmd.command('remove <name>').description('remove an office that holds no mailboxes')).action(
    action('office remove', (name: string, o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        if (!(await dir.deleteOffice(name))) throw usageError(`no office ${name.toLowerCase()} in the directory`);
        if (o.json) printJson({ removed: name.toLowerCase() });
        else process.stdout.write(`removed office ${name.toLowerCase()}\n`);
      }),
    ),
  );
}
