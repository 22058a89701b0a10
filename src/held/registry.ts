// Which domains are held: the seed's layout (virtualdomains id, users/assign home, RELAYHOST and Maildir there).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { asciiLower } from '../core/index.js';
import type { Control } from '../control/index.js';
import {
  lookupAssignment,
  parsePasswd,
  systemPasswd,
  tablePasswd,
  type PasswdEntry,
  type PasswdSource,
} from '../users/index.js';

/** One held domain, found from the files the seeds write by hand (and `quail held add` would write). */
export interface HeldDomain {
  readonly domain: string;
  /** The Delivered-To prefix: the virtualdomains id and a dash (`some.example.com-`). */
  readonly prefix: string;
  /** The users/assign home: RELAYHOST, .qmail-default and Maildir/ live here. */
  readonly home: string;
  readonly maildir: string;
  /** RELAYHOST, the lock file of the seed's script (setlock -nx RELAYHOST) and of quail's pushes. */
  readonly lockPath: string;
  /** The customer's host (HOST or HOST:PORT), RELAYHOST's first line. */
  readonly relayhost: string;
  /** The home's HELD file (`quail held add` writes it); a seed-made home has none: every setting at its default. */
  readonly settings: HeldSettings;
}

/** What `quail held add` recorded beyond the seed's files. */
export interface HeldSettings {
  /** Seconds between timed pushes; undefined: control/heldinterval. */
  readonly every: number | undefined;
  /** ETRN allowed from the host's address; undefined (a seed-made home): allowed, as before held domains existed. */
  readonly etrn: boolean | undefined;
  /** The login that may take the mail with ATRN (RFC 2645); '' none. */
  readonly atrn: string;
  /** AutoTURN: client networks (IP/BITS) whose port-25 session triggers a push (to RELAYHOST, src/start/held-link.ts). */
  readonly autoturn: readonly string[];
}

const NO_SETTINGS: HeldSettings = { every: undefined, etrn: undefined, atrn: '', autoturn: [] };

/** HELD's lines: `every N`, `etrn yes|no`, `atrn LOGIN`, `autoturn IP/BITS`; unknown or bad lines are skipped. */
export function parseSettings(text: string): HeldSettings {
  let every: number | undefined;
  let etrn: boolean | undefined = false;
  let atrn = '';
  const autoturn: string[] = [];
  for (const line of text.split('\n')) {
    const [key = '', value = ''] = line.trim().split(/\s+/);
    if (key === 'every' && /^[0-9]+$/.test(value) && Number(value) > 0) every = Number(value);
    else if (key === 'etrn') etrn = value === 'yes';
    else if (key === 'atrn' && value !== '') atrn = asciiLower(value);
    else if (key === 'autoturn' && value !== '') autoturn.push(value);
  }
  return { every, etrn, atrn, autoturn };
}

function readSettings(home: string): HeldSettings {
  try {
    return parseSettings(readFileSync(join(home, 'HELD'), 'utf8'));
  } catch {
    return NO_SETTINGS;
  }
}

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/**
 * The held domain `domain` names, or undefined: an exact virtualdomains entry (`domain:id`), whose `+id-`
 * assignment has a home with a RELAYHOST file naming a host and a Maildir. Never throws for a domain that is not
 * held; throws when a control file cannot be read (temporary).
 */
export function findHeld(root: string, control: Control, domain: string): HeldDomain | undefined {
  const name = asciiLower(domain.trim());
  if (name === '' || name.startsWith('.')) return undefined;
  const id = control.map('virtualdomains').value?.get(name)?.value.trim();
  if (id === undefined || id === '') return undefined;
  return heldAt(root, name, id, systemPasswd({ root }));
}

/**
 * /etc/passwd read once for a whole listHeld (systemPasswd reads and parses it on every lookup, and a virtualdomains
 * entry that is not held falls through users/cdb to passwd lookups: with thousands of entries that was most of the
 * time, in the SMTP process too, where AutoTURN reads the held domains). `alias` is systemPasswd's, which falls back
 * to control/quailuser.
 */
function passwdOnce(root: string): PasswdSource {
  const system = systemPasswd({ root });
  let table: PasswdSource | undefined;
  let alias: { entry: PasswdEntry | undefined } | undefined;
  return {
    byName(name) {
      if (name === 'alias') return (alias ??= { entry: system.byName('alias') }).entry;
      table ??= tablePasswd(parsePasswd(readFileSync('/etc/passwd', 'latin1')));
      return table.byName(name);
    },
  };
}

function heldAt(root: string, domain: string, id: string, passwd: PasswdSource): HeldDomain | undefined {
  const prefix = `${id}-`;
  let home: string;
  try {
    home = lookupAssignment({ root, local: `${prefix}postmaster`, passwd }).home;
  } catch {
    return undefined;
  }
  const lockPath = join(home, 'RELAYHOST');
  let relayhost: string;
  try {
    relayhost = (readFileSync(lockPath, 'utf8').split('\n')[0] ?? '').trim();
  } catch {
    return undefined;
  }
  const maildir = join(home, 'Maildir');
  if (relayhost === '' || !isDir(join(maildir, 'new'))) return undefined;
  return { domain, prefix, home, maildir, lockPath, relayhost, settings: readSettings(home) };
}

/** Every held domain among the exact virtualdomains entries, sorted by name. */
export function listHeld(root: string, control: Control): HeldDomain[] {
  const out: HeldDomain[] = [];
  const map = control.map('virtualdomains').value;
  if (map === null) return out;
  const passwd = passwdOnce(root);
  for (const [name, e] of [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const id = e.value.trim();
    if (name.startsWith('.') || name === '' || id === '') continue;
    const h = heldAt(root, name, id, passwd);
    if (h) out.push(h);
  }
  return out;
}
