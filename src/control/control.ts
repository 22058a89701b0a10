// The only reader of control files: one Control object is a snapshot (files read once, lazily, then kept).
import { closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errText, QuailError } from '../core/index.js';
import { CATALOGUE, controlDef, type ControlDef, type ControlName } from './catalogue.js';
import { parseList, parseMap, parseNumber, parseSingle, reportHostList, type MapEntry } from './parse.js';

/** List files of host names, whose junk entries ignored() reports (badmailfrom, replyrules... hold other things). */
const HOST_LISTS: ReadonlySet<ControlName> = new Set<ControlName>([
  'rcpthosts',
  'morercpthosts',
  'locals',
  'percenthack',
]);

/** Where a value came from: the file itself, or the default (possibly `me`). */
export type Source = 'file' | 'default';

export interface Setting<T> {
  readonly value: T;
  readonly source: Source;
}

/** A control file that exists but cannot be read: a temporary failure, never a silent default. */
export class ControlReadError extends QuailError {
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(
      `unable to read control file ${file}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`,
      true,
      '4.3.0',
      { cause },
    );
    this.name = 'ControlReadError';
  }
}

export class Control {
  private readonly cache = new Map<string, string | null>();
  /** control/ itself is a directory (checked once per snapshot, when a file is missing). */
  private dirOk: boolean | undefined;

  constructor(readonly root: string) {}

  /** Absolute path of control/<name>. */
  path(name: ControlName): string {
    return join(this.root, 'control', name);
  }

  /** The raw text (latin1, one char per byte), or null when missing. Unreadable → ControlReadError. */
  raw(name: ControlName): string | null {
    return this.text(name);
  }

  /**
   * A file of control/ the operator named instead of a catalogued one (a listener's `rcpthosts=FILE` or
   * `tcprules=FILE`, docs/LISTENERS.md), read as raw() reads: null when missing, ControlReadError when unreadable.
   * Only a plain name is accepted (no `/`, not starting with `.`): nothing outside control/ is read.
   */
  named(file: string): string | null {
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(file))
      throw new QuailError(`control file name ${JSON.stringify(file)}: letters, digits, . _ - only`, false);
    return this.text(file);
  }

  private text(name: string): string | null {
    if (this.cache.has(name)) return this.cache.get(name) ?? null;
    let text: string | null;
    // Most control files are missing (defaults): a stat that does not throw says so without the cost of an
    // exception and its stack (docs/PERFORMANCE.md: an SMTP session took several); present ones are read as before.
    if (this.surelyMissing(name)) {
      this.cache.set(name, null);
      return null;
    }
    try {
      text = readFileSync(join(this.root, 'control', name), 'latin1');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Only ENOENT means "missing" (qmail's control.c); anything else (EISDIR, ELOOP, EACCES, ENOTDIR
      // when control/ is not a directory) is a temporary failure, never a silent default.
      if (code === 'ENOENT') text = null;
      else throw new ControlReadError(join(this.root, 'control', name), err);
    }
    this.cache.set(name, text);
    return text;
  }

  /**
   * True only when the file is certainly missing (ENOENT in a control/ that is a directory). Anything else — present,
   * a symlink loop, control/ not a directory — goes to the read below, which gives the file or the exact error.
   */
  private surelyMissing(name: string): boolean {
    try {
      if (statSync(join(this.root, 'control', name), { throwIfNoEntry: false }) !== undefined) return false;
      this.dirOk ??= statSync(join(this.root, 'control'), { throwIfNoEntry: false })?.isDirectory() === true;
      return this.dirOk;
    } catch {
      return false;
    }
  }

  /** The raw bytes of a binary control file (morercpthosts.cdb), or null when missing. */
  bytes(name: ControlName): Buffer | null {
    const t = this.raw(name);
    return t === null ? null : Buffer.from(t, 'latin1');
  }

  /**
   * Opens a binary control file read-only for positional reads (morercpthosts.cdb is probed per key, never read
   * whole, as qmail-smtpd does). Outside the snapshot cache: each call opens the file as it is now, and the caller
   * owns the descriptor and closes it. null when missing (ENOENT only); unreadable (EACCES, a directory) →
   * ControlReadError, as in raw().
   */
  open(name: ControlName): number | null {
    const path = this.path(name);
    // missing (most installations have no morercpthosts.cdb): one stat, not a thrown ENOENT per SMTP session
    if (this.surelyMissing(name)) return null;
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new ControlReadError(path, err);
    }
    try {
      // open(2) succeeds on a directory; reading it would fail later with EISDIR, so say so now.
      if (fstatSync(fd).isDirectory()) throw Object.assign(new Error(`${path} is a directory`), { code: 'EISDIR' });
    } catch (err) {
      closeSync(fd);
      throw new ControlReadError(path, err);
    }
    return fd;
  }

  exists(name: ControlName): boolean {
    return this.raw(name) !== null;
  }

  /** control/me, or null. */
  me(): string | null {
    const t = this.raw('me');
    return t === null ? null : parseSingle(t);
  }

  private def(name: ControlName): ControlDef | undefined {
    return controlDef(name);
  }

  /** A single-value file with its catalogue default (null when neither file nor default exists). */
  single(name: ControlName): Setting<string | null> {
    const t = this.raw(name);
    if (t !== null) return { value: parseSingle(t), source: 'file' };
    const d = this.def(name)?.default ?? { from: 'none' };
    switch (d.from) {
      case 'literal':
        return { value: d.value, source: 'default' };
      case 'me':
        return { value: this.me() ?? d.fallback ?? null, source: 'default' };
      case 'number':
        return { value: String(d.value), source: 'default' };
      case 'none':
        return { value: null, source: 'default' };
    }
  }

  /** A number file (0.5); a file not starting with a digit counts as absent. Capped at the catalogue's max. */
  number(name: ControlName): Setting<number> {
    const def = this.def(name);
    const dflt = def?.default.from === 'number' ? def.default.value : 0;
    const t = this.raw(name);
    const n = t === null ? null : parseNumber(t, def?.wraps);
    const capped = (v: number): number => (def?.max !== undefined ? Math.min(v, def.max) : v);
    if (n === null) return { value: capped(dflt), source: 'default' };
    return { value: capped(n), source: 'file' };
  }

  /**
   * What qmail would ignore without a word, so that `quail start` can say it (at start and on SIGHUP) and `quail
   * showctl` list it: a number file that does not start with a digit (the default holds, as if it were missing); in a
   * mapping file (virtualdomains, smtproutes, tlsdestinations) a line without `:` (ignored), a pattern with a space or
   * tab (never matches) and a pattern given again (the later line wins); in a host list (rcpthosts, morercpthosts,
   * locals, percenthack) an entry with a space, a tab or a `:` (never matches). `line` is the 1-based line. An
   * unreadable one of those files is listed too: it never takes the default (what reads it fails temporarily).
   * What qmail does with the files is unchanged: this only reports.
   */
  ignored(): Array<{ readonly name: ControlName; readonly line?: number; readonly why: string }> {
    const out: Array<{ name: ControlName; line?: number; why: string }> = [];
    for (const def of CATALOGUE) {
      const hosts = def.kind === 'list' && HOST_LISTS.has(def.name);
      if (def.kind !== 'number' && def.kind !== 'map' && !hosts) continue;
      try {
        const text = this.raw(def.name);
        if (text === null) continue;
        if (hosts) {
          reportHostList(text, (line, why) => out.push({ name: def.name, line, why }));
          continue;
        }
        if (def.kind === 'number') {
          const n = this.number(def.name);
          if (n.source === 'default')
            out.push({ name: def.name, why: `does not start with a digit, so the default ${n.value} holds` });
          continue;
        }
        parseMap(text, (line, why) => out.push({ name: def.name, line, why }));
      } catch (err) {
        out.push({
          name: def.name,
          why: `unreadable (${errText(err)}): what reads it fails temporarily until it is fixed`,
        });
      }
    }
    return out;
  }

  /** A list file (0.2); for `locals` the default is [me]. null = missing with no default. */
  list(name: ControlName): Setting<readonly string[] | null> {
    const t = this.raw(name);
    if (t !== null) return { value: parseList(t), source: 'file' };
    const d = this.def(name)?.default;
    if (d?.from === 'me') {
      const me = this.me();
      return { value: me === null ? null : [me], source: 'default' };
    }
    return { value: null, source: 'default' };
  }

  /** A mapping file (0.3), keyed by lowercased pattern, last line wins. null = missing. */
  map(name: ControlName): Setting<ReadonlyMap<string, MapEntry> | null> {
    const t = this.raw(name);
    return t === null ? { value: null, source: 'default' } : { value: parseMap(t), source: 'file' };
  }
}
