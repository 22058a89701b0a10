// quail office export: what a plain qmail+vpopmail server at one office needs to take part (src/offices/README.md,
// "An office that still runs qmail"): seed 000's .qmail-user forward files, made from the shared directory. Every
// value taken from a row is checked first (trust.ts): names become paths, lines and words of a command.
import {
  closeSync,
  constants,
  fchmodSync,
  lstatSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import { DirectoryError, officeName, type Directory } from '../directory/index.js';
import {
  badAliasName,
  badDomainName,
  badForwardTarget,
  badLocal,
  badOffice,
  badOfficeName,
  keepTrusted,
} from './trust.js';

/** One file of the export: its path under the export directory, and its text or the name it links to. */
export type ExportFile =
  | { readonly path: string; readonly text: string; readonly mode: number }
  | { readonly path: string; readonly link: string };

/** The export's files, and the rows of the shared directory it left out (one line each: the row, why, the fix). */
export interface ExportResult {
  readonly files: ExportFile[];
  readonly refused: string[];
}

/** What to do about a row the export leaves out. */
const FIX = 'fix or remove the row in the shared directory (at the office that made it), then export again';

/** The host name an office has in the exported smtproutes: `.invalid` never resolves, so without the line mail waits. */
const routeHost = (office: string): string => `${office}.offices.invalid`;

/** qmail-local's .qmail name for a local part: lowercase, `.` as `:` (qmail-local(8)). */
const dotQmail = (local: string): string => `.qmail-${local.toLowerCase().replace(/\./g, ':')}`;

const FORWARDER = `#!/bin/sh
# quail-office-forward HOST ADDRESS (written by quail office export; install as /var/qmail/bin/quail-office-forward)
# From a .qmail file: hands the message on stdin to qmail-remote for ADDRESS at HOST (an office's name in
# control/smtproutes) and turns qmail-remote's report into qmail-local's exit codes: 0 delivered, 100 permanent
# failure (bounced), 111 temporary (retried). qmail-remote itself always exits 0: a .qmail line calling it directly
# would lose every message it could not deliver.
QMAILREMOTE=\${QMAILREMOTE:-/var/qmail/bin/qmail-remote}
if [ $# -ne 2 ]; then echo "usage: quail-office-forward HOST ADDRESS"; exit 111; fi
# One report per line: NULs end reports, newlines inside a report become spaces.
report=\`"$QMAILREMOTE" "$1" "$SENDER" "$2" | tr '\\000\\n' '\\n '\`
if printf '%s\\n' "$report" | grep -q '^r' && printf '%s\\n' "$report" | grep -q '^K'; then exit 0; fi
printf '%s\\n' "$report" | sed 's/^.//'
if printf '%s\\n' "$report" | grep -q '^[hD]'; then exit 100; fi
exit 111
`;

/**
 * The files for office `office`: for every mailbox of another office, `domains/DOMAIN/.qmail-LOCAL` (a forward to
 * that office through quail-office-forward) and `.qmail-LOCAL-default` linked to it (box-ext addresses); every
 * alias as `.qmail-ALIAS` of `&target` lines (aliases live in the directory: the qmail server must hold them too);
 * `control/smtproutes` lines naming the other offices' servers; the forwarder; the list of mailboxes that live at
 * this office (to make with vadduser); README.txt. A row whose values fail the local directory's checks (trust.ts)
 * is left out and named in `refused`: an office (and the mailboxes living there), a domain (and its mailboxes and
 * aliases), an alias domain, a mailbox, an alias.
 */
export async function officeExport(dir: Directory, office: string): Promise<ExportResult> {
  const name = officeName(office);
  const refused: string[] = [];
  const refuse = (what: string, why: string): void => {
    refused.push(`${what} refused: ${why}; ${FIX}`);
  };
  const keep = <T>(rows: readonly T[], what: (r: T) => string, bad: (r: T) => string | undefined): T[] =>
    keepTrusted(rows, what, bad, (line) => refused.push(line), FIX);
  const offices = await dir.listOffices();
  if (!offices.some((o) => o.name === name))
    throw new DirectoryError(
      `no office ${name} in the directory (there are: ${
        offices
          .filter((o) => badOfficeName(o.name) === undefined)
          .map((o) => o.name)
          .join(', ') || 'none'
      })`,
    );
  // The other offices: each name goes into a .qmail program line and smtproutes, its host and port into smtproutes.
  const others = keep(
    offices.filter((o) => o.name !== name),
    (o) => `office ${JSON.stringify(o.name)}`,
    badOffice,
  );
  const elsewhere = new Set(others.map((o) => o.name));
  const homes = await dir.mailboxHomes();
  const files: ExportFile[] = [];
  const here: string[] = [];
  const domainsUsed: string[] = [];
  for (const d of await dir.listDomains()) {
    const bad = badDomainName(d.name);
    if (bad !== undefined) {
      refuse(`domain ${JSON.stringify(d.name)}`, `${bad} (its mailboxes and aliases are left out too)`);
      continue;
    }
    const base = join('domains', d.name);
    let any = false;
    for (const h of homes.filter((x) => x.domain === d.name)) {
      const why =
        badLocal(h.local) ??
        (h.office === name || h.office === '' || elsewhere.has(h.office)
          ? undefined
          : `its office ${JSON.stringify(h.office)} is not one of the offices (${badOfficeName(h.office) ?? 'not in the offices table, or refused'})`);
      if (why !== undefined) {
        refuse(`mailbox ${JSON.stringify(`${h.local}@${h.domain}`)}`, why);
        continue;
      }
      if (h.office === name || h.office === '') {
        if (h.office === name) here.push(`${h.local}@${h.domain}`);
        continue;
      }
      const f = join(base, dotQmail(h.local));
      files.push({
        path: f,
        text: `|/var/qmail/bin/quail-office-forward ${routeHost(h.office)} "$EXT@$HOST"\n`,
        mode: 0o600,
      });
      files.push({ path: `${f}-default`, link: dotQmail(h.local) });
      any = true;
    }
    for (const a of await dir.listAliases(d.name)) {
      const why = badLocal(a.local) ?? a.targets.map(badForwardTarget).find((x) => x !== undefined);
      if (why !== undefined) {
        refuse(`alias ${JSON.stringify(`${a.local}@${d.name}`)}`, why);
        continue;
      }
      const lines = a.targets.map((t) => `&${t.replace(/^&/, '')}\n`).join('');
      files.push({ path: join(base, dotQmail(a.local)), text: lines, mode: 0o600 });
      any = true;
    }
    const aliases = keep(d.aliases, (x) => `alias domain ${JSON.stringify(x)} (of ${d.name})`, badAliasName);
    if (any) domainsUsed.push(aliases.length > 0 ? `${d.name} (alias domains: ${aliases.join(', ')})` : d.name);
  }
  files.push({
    path: join('control', 'smtproutes'),
    text: others.map((o) => `${routeHost(o.name)}:${o.host.replace(/^\[|\]$/g, '')}:${o.port}\n`).join(''),
    mode: 0o644,
  });
  files.push({ path: join('bin', 'quail-office-forward'), text: FORWARDER, mode: 0o755 });
  files.push({ path: 'mailboxes.txt', text: here.map((a) => `${a}\n`).join(''), mode: 0o644 });
  files.push({ path: 'README.txt', text: readme(name, domainsUsed, others.length, here.length), mode: 0o644 });
  return { files, refused };
}

function readme(office: string, domains: readonly string[], others: number, here: number): string {
  return `What a plain qmail+vpopmail server at office ${office} needs to take part (quail office export).

- domains/DOMAIN/.qmail-* go into ~vpopmail/domains/DOMAIN/ (owned by vpopmail, mode 600): one forward per mailbox
  that lives at another office (and .qmail-USER-default for USER-ext addresses), one file per alias. Domains:
  ${domains.join('\n  ') || '(none)'}
- bin/quail-office-forward goes to /var/qmail/bin/ (mode 755): it runs qmail-remote and turns its report into a
  delivery's exit code (qmail-remote alone always exits 0, so a failed forward would be lost).
- control/smtproutes: append its ${others} line(s) to /var/qmail/control/smtproutes. They name the other offices'
  servers as NAME.offices.invalid for quail-office-forward; no real domain is routed by them.
- mailboxes.txt: the ${here} mailbox(es) that live at ${office}; make each with vadduser.
- The domains themselves: vadddomain (and vaddaliasdomain for alias domains), as on any vpopmail server.

Mail from the other offices arrives by SMTP as from any client. Export again after every change of mailboxes,
aliases or offices (quail servers follow the directory by themselves; a qmail server does not).
`;
}

/**
 * `rel`'s directory under `out`, made if missing: each step below `out` must be a directory of its own, never a
 * symbolic link (one planted there would send the export's files anywhere).
 */
function dirUnder(out: string, rel: string): string {
  const parts = rel.split(sep);
  if (isAbsolute(rel) || parts.some((p) => p === '' || p === '.' || p === '..'))
    throw new DirectoryError(`the export's file ${JSON.stringify(rel)} is not a plain path under its directory`);
  let at = out;
  for (const part of parts.slice(0, -1)) {
    at = join(at, part);
    const st = lstatSync(at, { throwIfNoEntry: false });
    if (st === undefined) mkdirSync(at, { mode: 0o755 });
    else if (st.isSymbolicLink())
      throw new DirectoryError(
        `${at} is a symbolic link: the export does not follow links under its directory (remove it, or export into a new directory)`,
      );
    else if (!st.isDirectory())
      throw new DirectoryError(`${at} is not a directory: remove it, or export into a new directory`);
  }
  return at;
}

/**
 * Writes the files under `out` (made if missing; the export's own files are replaced): only under `out`, a file
 * created anew (O_EXCL, O_NOFOLLOW) after the old one (or a link in its place) is removed, so no link is followed.
 */
export function writeExport(out: string, files: readonly ExportFile[]): void {
  mkdirSync(out, { recursive: true, mode: 0o755 });
  for (const f of files) {
    const path = join(dirUnder(out, f.path), f.path.split(sep).pop() ?? '');
    if (lstatSync(path, { throwIfNoEntry: false })?.isDirectory() === true)
      throw new DirectoryError(`${path} is a directory: remove it, or export into a new directory`);
    rmSync(path, { force: true });
    if ('link' in f) symlinkSync(f.link, path);
    else {
      const fd = openSync(
        path,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        f.mode,
      );
      try {
        writeFileSync(fd, f.text);
        fchmodSync(fd, f.mode);
      } finally {
        closeSync(fd);
      }
    }
  }
}
