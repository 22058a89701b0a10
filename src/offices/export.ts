// quail office export: what a plain qmail+vpopmail server at one office needs to take part (src/offices/README.md,
// "An office that still runs qmail"): seed 000's .qmail-user forward files, made from the shared directory.
import { chmodSync, mkdirSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DirectoryError, type Directory } from '../directory/index.js';

/** One file of the export: its path under the export directory, and its text or the name it links to. */
export type ExportFile =
  | { readonly path: string; readonly text: string; readonly mode: number }
  | { readonly path: string; readonly link: string };

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
 * this office (to make with vadduser); README.txt.
 */
export async function officeExport(dir: Directory, office: string): Promise<ExportFile[]> {
  const name = office.trim().toLowerCase();
  const offices = await dir.listOffices();
  const self = offices.find((o) => o.name === name);
  if (!self)
    throw new DirectoryError(
      `no office ${name} in the directory (there are: ${offices.map((o) => o.name).join(', ') || 'none'})`,
    );
  const homes = await dir.mailboxHomes();
  const files: ExportFile[] = [];
  const here: string[] = [];
  const domainsUsed: string[] = [];
  for (const d of await dir.listDomains()) {
    const base = join('domains', d.name);
    let any = false;
    for (const h of homes.filter((x) => x.domain === d.name)) {
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
      files.push({ path: join(base, dotQmail(a.local)), text: a.targets.map((t) => `&${t}\n`).join(''), mode: 0o600 });
      any = true;
    }
    if (any) domainsUsed.push(d.aliases.length > 0 ? `${d.name} (alias domains: ${d.aliases.join(', ')})` : d.name);
  }
  const others = offices.filter((o) => o.name !== name);
  files.push({
    path: join('control', 'smtproutes'),
    text: others.map((o) => `${routeHost(o.name)}:${o.host.replace(/^\[|\]$/g, '')}:${o.port}\n`).join(''),
    mode: 0o644,
  });
  files.push({ path: join('bin', 'quail-office-forward'), text: FORWARDER, mode: 0o755 });
  files.push({ path: 'mailboxes.txt', text: here.map((a) => `${a}\n`).join(''), mode: 0o644 });
  files.push({ path: 'README.txt', text: readme(name, domainsUsed, others.length, here.length), mode: 0o644 });
  return files;
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

/** Writes the files under `out` (made if missing; the export's own files are replaced). */
export function writeExport(out: string, files: readonly ExportFile[]): void {
  for (const f of files) {
    const path = join(out, f.path);
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    rmSync(path, { force: true });
    if ('link' in f) symlinkSync(f.link, path);
    else {
      writeFileSync(path, f.text, { mode: f.mode });
      chmodSync(path, f.mode);
    }
  }
}
