// Atomic text edits of qmail's files (tmp + fsync + rename) and the lines the directory owns in them.
import { asciiLower } from '../core/index.js';
import { formatVdeliverLine } from '../vdeliver/index.js';
import type { HeldRecord } from './held.js';
import type { Domain } from './types.js';

/** Writes path via path.tmp.PID, fsyncs, renames: readers see the old or the new file, never a part (maildir's). */
export { writeAtomic } from '../maildir/index.js';

const lines = (text: string | null): string[] => {
  if (text === null || text === '') return [];
  const l = text.split('\n');
  if (l[l.length - 1] === '') l.pop();
  return l;
};
const join = (l: readonly string[]): string => (l.length === 0 ? '' : `${l.join('\n')}\n`);
/** asciiLower without the regex replace when there is nothing to fold (the usual case, 100,000 times a call). */
const lower = (s: string): string => (/[A-Z]/.test(s) ? asciiLower(s) : s);

/** One pass over a list file: the lines kept (not removed), which of the probed keys it holds, its entry count. */
interface ListScan {
  readonly text: string | null;
  readonly kept: readonly string[];
  readonly present: ReadonlySet<string>;
  readonly entries: number;
  readonly removed: boolean;
}

/**
 * Only the keys asked about (`probe`, the few names being added) are collected, not a set of every entry: a
 * morercpthosts of 100,000 lines is scanned without building a 100,000-entry set.
 */
function scanList(text: string | null, rm: ReadonlySet<string>, probe: ReadonlySet<string>): ListScan {
  const old = lines(text);
  const kept: string[] = [];
  const present = new Set<string>();
  let entries = 0;
  for (const l of old) {
    const k = lower(l.trim());
    if (rm.size > 0 && rm.has(k)) continue;
    kept.push(l);
    if (k !== '' && !k.startsWith('#')) {
      if (probe.has(k)) present.add(k);
      entries++;
    }
  }
  return { text, kept, present, entries, removed: kept.length !== old.length };
}

/** The new text: null when nothing changed; only appended to when nothing was removed (no rebuild of a big file). */
function finishList(s: ListScan, add: readonly string[]): string | null {
  if (!s.removed && add.length === 0) return null;
  if (!s.removed && s.text !== null)
    return `${s.text}${s.text === '' || s.text.endsWith('\n') ? '' : '\n'}${join(add)}`;
  return join([...s.kept, ...add]);
}

/** A line without its trailing blanks and tabs (0.2), without a regex per line. */
function cutBlanks(l: string): string {
  let end = l.length;
  while (end > 0 && (l.charCodeAt(end - 1) === 0x20 || l.charCodeAt(end - 1) === 0x09)) end--;
  return end === l.length ? l : l.slice(0, end);
}

/** Entries of a list file (0.2: trailing blanks cut, blank and `#` lines skipped), lowercased. */
export function listEntries(text: string | null): string[] {
  const out: string[] = [];
  for (const l of lines(text)) {
    const e = cutBlanks(l);
    if (e !== '' && !e.startsWith('#')) out.push(lower(e));
  }
  return out;
}

export interface RcptEdit {
  /** New text of each file, null when it needs no change. */
  readonly rcpthosts: string | null;
  readonly morercpthosts: string | null;
}

/**
 * Where accepted domains go (vpopmail's rule): a name already in either file stays where it is; a new one goes to
 * rcpthosts while it holds fewer than `max` entries, else to morercpthosts. `remove` leaves both files.
 * When morercpthosts gets entries and rcpthosts does not exist, rcpthosts is created (empty if need be): without
 * rcpthosts qmail-smtpd accepts every domain and never looks at morercpthosts.
 */
export function editRcptHosts(
  rcpt: string | null,
  more: string | null,
  add: readonly string[],
  remove: readonly string[],
  max: number,
): RcptEdit {
  const rm = new Set(remove.map(lower));
  const adds = add.map(lower);
  const probe = new Set(adds);
  const r = scanList(rcpt, rm, probe);
  const m = scanList(more, rm, probe);
  const have = new Set(r.present);
  let count = r.entries;
  const toRcpt: string[] = [];
  const toMore: string[] = [];
  for (const a of adds) {
    if (have.has(a) || m.present.has(a)) continue;
    have.add(a);
    if (count < max) {
      toRcpt.push(a);
      count++;
    } else toMore.push(a);
  }
  const rText = finishList(r, toRcpt);
  return {
    rcpthosts: rText === null && rcpt === null && toMore.length > 0 ? '' : rText,
    morercpthosts: finishList(m, toMore),
  };
}

/** virtualdomains: `key:value` entries set (replacing the key's line) or removed by key. null: no change. */
export function editMap(
  text: string | null,
  set: ReadonlyMap<string, string>,
  remove: readonly string[],
): string | null {
  const rm = new Set(remove.map(lower));
  const old = lines(text);
  const done = new Set<string>();
  const out: string[] = [];
  let changed = false;
  for (const l of old) {
    const i = l.indexOf(':');
    const key = i < 0 ? null : lower(l.slice(0, i).trim());
    if (key !== null && rm.has(key)) {
      changed = true;
      continue;
    }
    if (key !== null && set.has(key)) {
      if (done.has(key)) {
        changed = true; // a second line for the key goes
        continue;
      }
      done.add(key);
      const line = `${key}:${set.get(key) ?? ''}`;
      changed ||= line !== l;
      out.push(line);
      continue;
    }
    out.push(l);
  }
  const extra: string[] = [];
  for (const [k, v] of set) if (!done.has(k)) extra.push(`${k}:${v}`);
  if (!changed) return appended(text, extra); // the usual domain add: no rebuild of the whole text
  out.push(...extra);
  return out.length === old.length && out.every((l, i) => l === old[i]) ? null : join(out);
}

/** `text` (no line of it changed) with `extra` lines after it: what join(lines(text) + extra) makes. null: none. */
function appended(text: string | null, extra: readonly string[]): string | null {
  if (extra.length === 0) return null;
  if (text === null || text === '') return join(extra);
  return `${text}${text.endsWith('\n') ? '' : '\n'}${join(extra)}`;
}

/** The users/assign line of a managed domain. */
export function assignLine(root: string, d: Pick<Domain, 'name' | 'account'>): string {
  return `+${d.name}-:${d.account.user}:${d.account.uid}:${d.account.gid}:${root}/domains/${d.name}:-::`;
}

/** users/assign with `set` lines (keyed by their `+prefix:`) and without `remove` prefixes, before the `.`. */
export function editAssign(text: string | null, set: readonly string[], remove: readonly string[]): string | null {
  const keyOf = (l: string): string => lower(l.slice(0, l.indexOf(':') + 1));
  const rm = new Set(remove.map((p) => lower(`+${p}-:`)));
  const want = new Map(set.map((l) => [keyOf(l), l]));
  const old = lines(text);
  const out: string[] = [];
  let dot = -1;
  let dotAt = 0; // offset of the `.` line in text
  let offset = 0;
  let changed = false;
  for (const l of old) {
    const at = offset;
    offset += l.length + 1;
    if (dot < 0 && l.startsWith('.')) {
      dot = out.length;
      dotAt = at;
      out.push(l);
      continue;
    }
    if (dot >= 0) {
      out.push(l);
      continue;
    }
    const k = keyOf(l);
    if (rm.has(k)) {
      changed = true;
      continue;
    }
    const line = want.get(k);
    if (line !== undefined) {
      changed ||= line !== l;
      out.push(line);
      want.delete(k);
      continue;
    }
    out.push(l);
  }
  const rest = [...want.values()];
  if (!changed && text !== null) {
    // The usual domain add: the new lines go in before the `.` line, no rebuild of the whole text.
    const tail = text.endsWith('\n') ? '' : '\n';
    if (dot < 0) return `${text}${text === '' ? '' : tail}${join([...rest, '.'])}`;
    if (rest.length === 0) return null;
    return `${text.slice(0, dotAt)}${join(rest)}${text.slice(dotAt)}${tail}`;
  }
  if (dot < 0) out.push(...rest, '.');
  else out.splice(dot, 0, ...rest);
  return out.length === old.length && out.every((l, i) => l === old[i]) ? null : join(out);
}

/**
 * The domain's `.qmail-default`: one program line handing every address to vdeliver, the policy word sh-quoted when
 * it is not plain (vdeliver's `formatVdeliverLine`: a real qmail-local runs the line with /bin/sh).
 */
export function dotQmailDefault(d: Pick<Domain, 'policy'>): string {
  return `${formatVdeliverLine(d.policy)}\n`;
}

/** The users/assign line of a held domain: its mail goes to `<root>/held/<name>`, as the seeds' /home/serialmail/<name>. */
export function heldAssignLine(root: string, h: Pick<HeldRecord, 'name' | 'account'>): string {
  return `+${h.name}-:${h.account.user}:${h.account.uid}:${h.account.gid}:${root}/held/${h.name}:-::`;
}

/**
 * The files of a held home: RELAYHOST (the host; the lock), `.qmail-default` (`./Maildir/`), and HELD, the settings
 * `quail start` reads (src/held's registry): `every SECONDS`, `etrn yes|no`, `atrn LOGIN`, `autoturn IP/BITS`.
 */
export function heldFiles(h: HeldRecord): [string, string][] {
  const settings = [
    `every ${h.everySeconds}`,
    `etrn ${h.etrn ? 'yes' : 'no'}`,
    ...(h.atrnLogin === '' ? [] : [`atrn ${h.atrnLogin}`]),
    ...h.autoturn.map((a) => `autoturn ${a}`),
  ];
  return [
    ['RELAYHOST', `${h.host}\n`],
    ['.qmail-default', './Maildir/\n'],
    ['HELD', `${settings.join('\n')}\n`],
  ];
}
