// Which .qmail file a delivery uses (docs/QMAIL.md D.3) and the NEWSENDER owner rule (D.4): sync fs, no side effects.
import { closeSync, constants, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { errorStr, errnoCode, isTemporaryErrno } from './errstr.js';

/** conf-patrn 002: the world-write bit makes a home or .qmail file unsafe (D.1.3, D.3.5). */
export const PATRN = 0o002;

export interface DotQmailChoice {
  /** Chosen file name relative to the home directory (`.qmail-foo-default`), or null if none exists. */
  readonly file: string | null;
  /** Every name tried, in order (including the chosen one). */
  readonly tried: readonly string[];
  /** The DEFAULT variable when a `…default` file was chosen (D.3.3); absent otherwise. */
  readonly defaultPart?: string;
  /** Owner-execute bit set: the file may only forward (D.3.5, D.6.4). */
  readonly forwardOnly: boolean;
  /** The file's bytes (Latin-1 text: one char per byte) when a file was chosen. */
  readonly text?: string;
  /** Temporary failure text (access denied, world-writable .qmail): delivery must defer with it. */
  readonly failure?: string;
}

/** D.3.1: ext with A-Z lowercased and every `.` replaced by `:`. */
export function safeExt(ext: string): string {
  return ext.replace(/[A-Z.]/g, (c) => (c === '.' ? ':' : c.toLowerCase()));
}

type Probe =
  { kind: 'absent' } | { kind: 'found'; forwardOnly: boolean; text: string } | { kind: 'fail'; text: string };

/** qmeexists(): open (non-blocking, so a FIFO cannot hang us), regular file or absent, writable check. */
function probe(home: string, name: string): Probe {
  let fd: number;
  try {
    fd = openSync(`${home}/${name}`, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoCode(err);
    if (isTemporaryErrno(err) || code === 'EACCES' || code === 'EPERM') {
      return { kind: 'fail', text: `Unable to open ${name}: ${errorStr(err)}. (#4.3.0)` };
    }
    return { kind: 'absent' };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { kind: 'absent' };
    if (st.mode & PATRN) return { kind: 'fail', text: 'Uh-oh: .qmail file is writable. (#4.7.0)' };
    const text = readFileSync(fd).toString('latin1');
    return { kind: 'found', forwardOnly: (st.mode & 0o100) !== 0, text };
  } catch (err) {
    return { kind: 'fail', text: `Unable to open ${name}: ${errorStr(err)}. (#4.3.0)` };
  } finally {
    closeSync(fd);
  }
}

/**
 * D.3: `.qmail<dash><safeext>`, then the `-default` chain from the longest prefix to the shortest
 * (with an empty dash and ext the only default is `.qmaildefault`). Directories count as absent.
 */
export function findDotQmail(home: string, dash: string, ext: string): DotQmailChoice {
  const safe = safeExt(ext);
  const tried: string[] = [];
  const exact = `.qmail${dash}${safe}`;
  tried.push(exact);
  const first = probe(home, exact);
  if (first.kind === 'fail') return { file: null, tried, forwardOnly: false, failure: first.text };
  if (first.kind === 'found') {
    // Quirk (D.3.3): an exact name ending in `default` sets DEFAULT to the last 7 characters of ext.
    const i = safe.length - 7;
    const defaultPart = i >= 0 && safe.endsWith('default') && i <= ext.length ? ext.slice(i) : undefined;
    return {
      file: exact,
      tried,
      forwardOnly: first.forwardOnly,
      text: first.text,
      ...(defaultPart !== undefined ? { defaultPart } : {}),
    };
  }
  for (let i = safe.length; i >= 0; i--) {
    if (i !== 0 && safe[i - 1] !== '-') continue;
    const name = `.qmail${dash}${safe.slice(0, i)}default`;
    tried.push(name);
    const p = probe(home, name);
    if (p.kind === 'fail') return { file: null, tried, forwardOnly: false, failure: p.text };
    if (p.kind === 'found')
      return { file: name, tried, forwardOnly: p.forwardOnly, text: p.text, defaultPart: ext.slice(i) };
  }
  return { file: null, tried, forwardOnly: false };
}

/** Outcome of the D.4 owner check: the sender for forwards, or a temporary failure text. */
export type NewSender = { readonly sender: string } | { readonly failure: string };

/** qmeox(): does `.qmail<dash><safeext><suffix>` exist (any type)? A temporary stat error is a failure. */
function ownerFileExists(home: string, name: string): boolean | string {
  try {
    // absent is the usual answer: no exception for it (ENOENT and ENOTDIR are "absent" either way)
    return statSync(`${home}/${name}`, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    if (isTemporaryErrno(err)) return `Unable to open ${name}: ${errorStr(err)}. (#4.3.0)`;
    return false;
  }
}

/** D.4: NEWSENDER from the -owner / -owner-default files (not for `""` and `#@[]` senders). */
export function newSender(
  home: string,
  a: { dash: string; ext: string; local: string; domain: string; sender: string },
): NewSender {
  if (a.sender === '' || a.sender === '#@[]') return { sender: a.sender };
  const base = `.qmail${a.dash}${safeExt(a.ext)}`;
  const owner = ownerFileExists(home, `${base}-owner`);
  if (typeof owner === 'string') return { failure: owner };
  if (!owner) return { sender: a.sender };
  const verp = ownerFileExists(home, `${base}-owner-default`);
  if (typeof verp === 'string') return { failure: verp };
  return { sender: verp ? `${a.local}-owner-@${a.domain}-@[]` : `${a.local}-owner@${a.domain}` };
}
