// Files under @ROOT@ and @QMAIL@/alias before and after a delivery run: new, changed and removed (FORMAT.md 3.2).
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GROUPS, type Placeholders, type ScenarioAccount } from '../world.js';

export interface FileState {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly content: Buffer;
}

export type Snapshot = Map<string, FileState>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A directory entry's name as the scenario spells it. Names the runner or quail made are UTF-8 (Node encodes string
 * paths so, on both sides); a name that is not UTF-8 is a program's own bytes (`> "$LOCAL.env0"` with LOCAL holding
 * 0xE9), which the scenario writes one character a byte (FORMAT.md: Latin-1).
 */
function entryName(raw: Buffer): string {
  try {
    return utf8.decode(raw);
  } catch {
    return raw.toString('latin1');
  }
}

/** Every regular file below each directory (symlinks are not followed). */
export function snapshot(dirs: readonly string[]): Snapshot {
  const out: Snapshot = new Map();
  const walk = (dir: string, bytes: Buffer): void => {
    let names: Buffer[];
    try {
      names = readdirSync(bytes, { encoding: 'buffer' });
    } catch {
      return;
    }
    for (const raw of names) {
      const p = join(dir, entryName(raw));
      const pb = Buffer.concat([bytes, Buffer.from('/'), raw]);
      const st = lstatSync(pb);
      if (st.isDirectory()) walk(p, pb);
      else if (st.isFile()) out.set(p, { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, content: readFileSync(pb) });
    }
  };
  for (const d of dirs) walk(d, Buffer.from(d));
  return out;
}

/** An observed file in FORMAT.md 3.2 form (content not yet normalised). */
export interface ObservedFile {
  path: string;
  mode: string;
  owner: string;
  group: string;
  status: 'new' | 'changed';
  maildir_file?: true;
  content?: string;
  env?: Record<string, string>;
}

/** A NUL-separated environment (`env -0`) as an object. */
export function parseEnv0(b: Buffer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of b.toString('latin1').split('\0')) {
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    if (eq < 0) env[entry] = '';
    else env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/** New and changed files (placeholder paths; maildir names → `*`), and removed paths. */
export function diffFiles(
  before: Snapshot,
  after: Snapshot,
  ph: Placeholders,
  passwd: readonly ScenarioAccount[],
  normalise: (text: string) => string,
): { files: ObservedFile[]; removed: string[] } {
  const owner = (uid: number): string => passwd.find((p) => p.uid === uid)?.name ?? String(uid);
  const group = (gid: number): string => Object.entries(GROUPS).find(([, g]) => g === gid)?.[0] ?? String(gid);
  const files: ObservedFile[] = [];
  for (const [path, st] of after) {
    const old = before.get(path);
    if (old && old.mode === st.mode && old.uid === st.uid && old.gid === st.gid && old.content.equals(st.content))
      continue;
    const sub = basename(dirname(path));
    const inMaildir = sub === 'new' || sub === 'cur' || sub === 'tmp';
    const f: ObservedFile = {
      path: ph.unsubst(inMaildir ? join(dirname(path), '*') : path),
      mode: st.mode.toString(8).padStart(4, '0'),
      owner: owner(st.uid),
      group: group(st.gid),
      status: old ? 'changed' : 'new',
    };
    if (inMaildir) f.maildir_file = true;
    if (path.endsWith('.env0')) {
      const env = parseEnv0(st.content);
      f.env = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, normalise(v)]));
    } else f.content = normalise(st.content.toString('latin1'));
    files.push(f);
  }
  const removed = [...before.keys()].filter((p) => !after.has(p)).map((p) => ph.unsubst(p));
  return { files, removed };
}
