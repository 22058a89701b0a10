// Helpers every scenario kind needs: loading, placeholders, building `fs`, the 1.3/1.4 normalisations, bytes.
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cdbEntries } from '../../src/cdb/index.js';
import type { Scenario } from './types.js';

/** Reads and minimally validates one scenario file (FORMAT.md section 1). */
export function loadScenario(path: string): Scenario {
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${path}: not a JSON object`);
  const s = parsed as Record<string, unknown>;
  if (typeof s['id'] !== 'string' || typeof s['kind'] !== 'string') throw new Error(`${path}: missing id or kind`);
  if (typeof s['input'] !== 'object' || s['input'] === null) throw new Error(`${path}: missing input`);
  if (typeof s['outcome'] !== 'object' || s['outcome'] === null) throw new Error(`${path}: missing outcome`);
  return parsed as Scenario;
}

export interface Placeholders {
  readonly root: string;
  readonly qmail: string;
  /** @ROOT@/@QMAIL@ → this run's directories (for inputs). */
  readonly subst: (text: string) => string;
  /** This run's directories → @ROOT@/@QMAIL@ (for what we observed, before comparing). */
  readonly unsubst: (text: string) => string;
}

export function makePlaceholders(root: string, qmail: string): Placeholders {
  // Replace the longer path first so that a directory nested in the other maps to its own token.
  const pairs: Array<[string, string]> = [
    ['@ROOT@', root],
    ['@QMAIL@', qmail],
  ];
  pairs.sort((a, b) => b[1].length - a[1].length);
  return {
    root,
    qmail,
    subst: (text) => text.split('@ROOT@').join(root).split('@QMAIL@').join(qmail),
    unsubst: (text) => pairs.reduce((t, [token, real]) => t.split(real).join(token), text),
  };
}

/** A scenario string stands for bytes (Latin-1, FORMAT.md preamble) or is `{ b64 }`. */
export function decodeBytes(v: unknown): Buffer {
  if (typeof v === 'string') return textBytes(v);
  if (typeof v === 'object' && v !== null && typeof (v as { b64?: unknown }).b64 === 'string') {
    return Buffer.from((v as { b64: string }).b64, 'base64');
  }
  throw new Error(`expected a string or {"b64": ...}, got ${JSON.stringify(v)}`);
}

/** Text to bytes: one byte per char when every char is U+0000..U+00FF, else UTF-8. */
export function textBytes(text: string): Buffer {
  // eslint-disable-next-line no-control-regex
  return /^[\u0000-\u00ff]*$/.test(text) ? Buffer.from(text, 'latin1') : Buffer.from(text, 'utf8');
}

/** Bytes to a scenario string (Latin-1: one char per byte). */
export const bytesText = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

export interface ScenarioAccount {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** FORMAT.md 1.2 group names. */
export const GROUPS: Readonly<Record<string, number>> = { qmail: 1002, nofiles: 1001, qousers: 42000, root: 0 };

/** The scenario's passwd table with placeholders replaced (root is always present). */
function scenarioPasswd(s: Scenario, subst: (t: string) => string): ScenarioAccount[] {
  const list = (s.passwd ?? []).map((e) => ({ name: e.name, uid: e.uid, gid: e.gid, home: subst(e.home) }));
  if (!list.some((e) => e.name === 'root')) list.push({ name: 'root', uid: 0, gid: 0, home: '/root' });
  return list;
}

export interface FsEntry {
  readonly path: string;
  readonly type: 'dir' | 'file' | 'maildir';
  readonly mode: string;
  readonly owner: string;
  readonly group?: string;
  readonly content?: unknown;
}

function uidOf(name: string, passwd: readonly ScenarioAccount[]): number {
  const e = passwd.find((p) => p.name === name);
  if (e) return e.uid;
  if (name === 'root') return 0;
  if (/^\d+$/.test(name)) return Number(name);
  throw new Error(`fs owner ${name} is not in the scenario's passwd table`);
}

function gidOf(entry: FsEntry, passwd: readonly ScenarioAccount[]): number {
  if (entry.group === undefined) return passwd.find((p) => p.name === entry.owner)?.gid ?? 0;
  const g = GROUPS[entry.group];
  if (g !== undefined) return g;
  if (/^\d+$/.test(entry.group)) return Number(entry.group);
  throw new Error(`fs group ${entry.group} is unknown (known: ${Object.keys(GROUPS).join(', ')})`);
}

/** Creates missing parents 0755 root:root (FORMAT.md 3.1). */
function mkParents(path: string): void {
  const parent = dirname(path);
  if (existsSync(parent)) return;
  mkParents(parent);
  mkdirSync(parent);
  chmodSync(parent, 0o755);
  chownSync(parent, 0, 0);
}

/**
 * Creates FORMAT.md 3.1 `fs` entries in order. Owners are chowned by number from the scenario's passwd table
 * (the accounts need not exist on this machine); the mode (with setuid/setgid/sticky bits) is applied by chmod
 * after creation so the umask cannot change it.
 */
export function buildFs(
  entries: readonly FsEntry[] | undefined,
  opts: { subst: (t: string) => string; passwd: readonly ScenarioAccount[] },
): void {
  for (const entry of entries ?? []) {
    const path = opts.subst(entry.path);
    const mode = parseInt(entry.mode, 8);
    const uid = uidOf(entry.owner, opts.passwd);
    const gid = gidOf(entry, opts.passwd);
    mkParents(path);
    const make = (p: string, kind: 'dir' | 'file'): void => {
      if (kind === 'dir') {
        if (!existsSync(p)) mkdirSync(p);
      } else {
        const content = entry.content === undefined ? Buffer.alloc(0) : entry.content;
        writeFileSync(p, typeof content === 'string' ? textBytes(opts.subst(content)) : decodeBytes(content));
      }
      chownSync(p, uid, gid);
      chmodSync(p, mode);
    };
    if (entry.type === 'file') make(path, 'file');
    else if (entry.type === 'dir') make(path, 'dir');
    else if (entry.type === 'maildir') {
      make(path, 'dir');
      for (const sub of ['cur', 'new', 'tmp']) make(join(path, sub), 'dir');
    } else throw new Error(`fs entry ${entry.path}: unknown type ${String(entry.type)}`);
  }
}

/** FORMAT.md 1.4 (one definition, shared with the scheduler's log). */
export { logsafe } from '../../src/core/index.js';

const MON = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const DAY = '(?:Sun|Mon|Tue|Wed|Thu|Fri|Sat)';
const DATE822 = new RegExp(`\\b\\d{1,2} ${MON} \\d{4} \\d{2}:\\d{2}:\\d{2} [-+]\\d{4}`, 'g');
const CTIME = new RegExp(`\\b${DAY} ${MON} [ \\d]\\d \\d{2}:\\d{2}:\\d{2} \\d{4}`, 'g');

/** @DATE822@ and @CTIME@ (FORMAT.md 1.3). */
function normaliseDates(text: string): string {
  return text.replace(DATE822, '@DATE822@').replace(CTIME, '@CTIME@');
}

/** @PID@ in `Received: (qmail <pid> invoked ...`. */
const normalisePid = (text: string): string => text.replace(/\(qmail \d+ invoked/g, '(qmail @PID@ invoked');

/** @TIME@ and @QP@ in `250 ok <time> qp <qp>`, @QP@ after any `qp ` / `qp_`, and Message-ID `<time.pid.qmail@`. */
function normaliseQueueIds(text: string): string {
  return text
    .replace(/250 ok \d+ qp \d+/g, '250 ok @TIME@ qp @QP@')
    .replace(/\bqp([ _])\d+/g, 'qp$1@QP@')
    .replace(/<\d+\.\d+\.qmail@/g, '<@TIME@.@PID@.qmail@');
}

/** Every FORMAT.md 1.3 token except placeholders (use Placeholders.unsubst for those). */
export const normaliseTokens = (text: string): string => normaliseQueueIds(normalisePid(normaliseDates(text)));

/** FORMAT.md 5.2 text form: `\xNN` outside 0x20..0x7e, `\\` for a backslash. */
export function escapeBytes(b: Uint8Array): string {
  let out = '';
  for (const c of b) {
    if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20 && c <= 0x7e) out += String.fromCharCode(c);
    else out += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return out;
}

export interface CdbRecordText {
  readonly key: string;
  readonly data: string;
  readonly key_hex: string;
  readonly data_hex: string;
}

/** The records of a cdb in file order, FORMAT.md 5.2 (apply `unsubst` to key/data yourself if needed). */
export function cdbRecords(buf: Buffer, unsubst: (t: string) => string = (t) => t): CdbRecordText[] {
  return [...cdbEntries(buf)].map(([k, d]) => ({
    key: unsubst(escapeBytes(k)),
    data: unsubst(escapeBytes(d)),
    key_hex: k.toString('hex'),
    data_hex: d.toString('hex'),
  }));
}

/** A short first-difference description of two values (for FAIL lines). */
export function shortDiff(what: string, expected: unknown, actual: unknown): string | undefined {
  const e = JSON.stringify(expected);
  const a = JSON.stringify(actual);
  if (e === a) return undefined;
  const clip = (s: string | undefined): string =>
    s === undefined ? 'undefined' : s.length > 160 ? `${s.slice(0, 157)}...` : s;
  let i = 0;
  if (e !== undefined && a !== undefined) while (i < e.length && e[i] === a[i]) i++;
  const at = i > 40 ? i - 20 : 0;
  return `${what}: expected ${clip(e?.slice(at))} got ${clip(a?.slice(at))}`;
}

export interface World {
  /** This run's @ROOT@ and @QMAIL@ with subst/unsubst. */
  readonly ph: Placeholders;
  /** The scenario's accounts with real home paths. */
  readonly passwd: ScenarioAccount[];
}

/**
 * FORMAT.md 2: `<workDir>/root` (= @ROOT@, 0755 root) and `<workDir>/qmail` (= @QMAIL@) with empty
 * control/, users/ and alias/ (alias: owner alias, group qmail, mode 2755), then the scenario's `fs`.
 */
export function setupWorld(workDir: string, s: Scenario): World {
  chmodSync(workDir, 0o755); // delivery children running as other uids must traverse it
  const ph = makePlaceholders(join(workDir, 'root'), join(workDir, 'qmail'));
  const passwd = scenarioPasswd(s, ph.subst);
  for (const d of [ph.root, ph.qmail, join(ph.qmail, 'control'), join(ph.qmail, 'users'), join(ph.qmail, 'alias')]) {
    mkdirSync(d, { recursive: true });
    chownSync(d, 0, 0);
    chmodSync(d, 0o755);
  }
  const alias = passwd.find((p) => p.name === 'alias');
  const aliasDir = join(ph.qmail, 'alias');
  chownSync(aliasDir, alias?.uid ?? 0, GROUPS['qmail'] ?? 0);
  chmodSync(aliasDir, 0o2755);
  buildFs(s.input['fs'] as FsEntry[] | undefined, { subst: ph.subst, passwd });
  return { ph, passwd };
}

/** Absolute path of the compiled `quail` CLI (src/cli/main.js in the same build), for kinds that run it as a process. */
export function quailCli(): string {
  return fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
}

/** The package directory (where package.json is), found from this file's location. */
function packageDir(): string {
  // the nearest directory above this file with package.json (build/test/conformance/ or test/conformance/)
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The repository's pinned copy of the qmail oracle corpus (test/conformance/corpus/README.md), from the package root. */
export function pinnedCorpus(): string {
  return join(packageDir(), 'test', 'conformance', 'corpus');
}
