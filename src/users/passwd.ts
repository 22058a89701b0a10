// Account databases for the lookup: a fixed table (tests, conformance) or /etc/passwd (+ control/quailuser).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempError } from '../core/index.js';
import { Control } from '../control/index.js';
import type { PasswdEntry, PasswdSource } from './types.js';

/** A PasswdSource over a fixed list; the first entry of a name wins, like getpwnam on a passwd file. */
export function tablePasswd(entries: readonly PasswdEntry[]): PasswdSource {
  const byName = new Map<string, PasswdEntry>();
  for (const e of entries) if (!byName.has(e.name)) byName.set(e.name, e);
  return { byName: (name) => byName.get(name) };
}

/** Parses passwd(5) text: name:password:uid:gid:gecos:home:shell. Malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || f[0] === '' || line.startsWith('+') || line.startsWith('-')) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!/^\d+$/.test(f[2] ?? '') || !/^\d+$/.test(f[3] ?? '')) continue;
    out.push({ name: f[0] ?? '', uid, gid, home: f[5] ?? '' });
  }
  return out;
}

/**
 * The system's accounts from /etc/passwd (read on each lookup, so new accounts are seen without a restart).
 * When the system has no `alias` account and `<root>/control/quailuser` names one, `alias` resolves to that
 * account's uid/gid with home `<root>/alias`: this is how quail runs without qmail's alias account.
 */
export function systemPasswd(opts: { root?: string; passwdFile?: string } = {}): PasswdSource {
  const file = opts.passwdFile ?? '/etc/passwd';
  const read = (): PasswdSource => {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch (err) {
      throw tempError(`unable to read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
    }
    return tablePasswd(parsePasswd(text));
  };
  return {
    byName(name: string): PasswdEntry | undefined {
      const table = read();
      const found = table.byName(name);
      if (found || name !== 'alias' || opts.root === undefined) return found;
      const quailuser = new Control(opts.root).single('quailuser').value;
      if (!quailuser) return undefined;
      const acct = table.byName(quailuser);
      return acct ? { name: 'alias', uid: acct.uid, gid: acct.gid, home: join(opts.root, 'alias') } : undefined;
    },
  };
}
