// quail showctl: every control file of the catalogue, its value and where it came from (qmail-showctl).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CATALOGUE, Control, ControlReadError, type ControlDef } from '../control/index.js';
import { action, addRootOption, CliError, resolveRoot } from './common.js';

/** A missing or non-directory mail root: a temporary error that says how to make one. */
export function needRoot(root: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(root).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CliError(`mail root ${root} does not exist; run \`quail init --root ${root}\` first`, true);
    }
    throw new CliError(
      `unable to look at mail root ${root}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      true,
    );
  }
  if (!isDir)
    throw new CliError(`mail root ${root} is not a directory; give a directory with --root or $QUAIL_ROOT`, true);
}

const indent = (lines: readonly string[]): string[] => lines.map((l) => `    ${l}`);
const shown = (s: string): string => (s === '' ? '(empty)' : /^\s|\s$/.test(s) ? JSON.stringify(s) : s);

/** Which default applies, in words: "default: me", "default: me is missing, so the word X", "default". */
function defaultNote(def: ControlDef, me: string | null): string {
  const d = def.default;
  switch (d.from) {
    case 'me':
      if (me !== null) return 'default: me';
      return d.fallback !== undefined
        ? `default: me is missing, so the word ${d.fallback}`
        : 'default: me, which is missing too';
    case 'literal':
    case 'number':
      return 'default';
    case 'none':
      return 'missing, no default';
  }
}

/** The value lines of one entry (after "name:"). Throws ControlReadError when the file is unreadable. */
function valueOf(c: Control, def: ControlDef): string[] {
  const me = c.me();
  const present = c.exists(def.name);
  switch (def.kind) {
    case 'single': {
      const s = c.single(def.name);
      if (s.source === 'file') return [shown(s.value ?? '')];
      return [s.value === null ? `(${defaultNote(def, me)})` : `${shown(s.value)} (${defaultNote(def, me)})`];
    }
    case 'number': {
      const n = c.number(def.name);
      const raw = c.raw(def.name);
      if (n.source === 'file') {
        const said = Number(/^[0-9]+/.exec(raw ?? '')?.[0] ?? n.value);
        return [said === n.value ? String(n.value) : `${n.value} (the file says ${said}; at most ${n.value})`];
      }
      return [present ? `${n.value} (default: the file does not start with a digit)` : `${n.value} (default)`];
    }
    case 'list': {
      const l = c.list(def.name);
      if (l.value === null) return [`(${defaultNote(def, me)})`];
      if (l.source === 'default') return [`${l.value.join(', ')} (${defaultNote(def, me)})`];
      return l.value.length === 0 ? ['(file present, no entries)'] : l.value.map(shown);
    }
    case 'map': {
      const m = c.map(def.name).value;
      if (m === null) return [`(${defaultNote(def, me)})`];
      if (m.size === 0) return ['(file present, no entries)'];
      return [...m.values()].map(
        (e) => `line ${e.line}: ${shown(e.pattern)} -> ${e.value === '' ? '(empty)' : e.value}`,
      );
    }
    case 'cdb': {
      const b = c.bytes(def.name);
      return [b === null ? `(${defaultNote(def, me)})` : `present (${b.length} bytes)`];
    }
    case 'lines': {
      const t = c.raw(def.name);
      if (t !== null) {
        if (def.name.endsWith('.pem')) return [`present (${t.length} bytes; not shown)`];
        const lines = t.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        return lines.length === 0 ? ['(file present, empty)'] : lines;
      }
      const d = def.default;
      if (d.from !== 'literal') return [`(${defaultNote(def, me)})`];
      return [...d.value.replace(/\n$/, '').split('\n'), '(default)'];
    }
  }
}

/** The whole report for one mail root (never throws for a bad control file: it is reported). */
export function showctl(root: string): string {
  const c = new Control(root);
  const out: string[] = [`mail root: ${root}`, ''];
  let bad = 0;
  for (const def of CATALOGUE) {
    let lines: string[];
    let source = '';
    try {
      lines = valueOf(c, def);
      if (c.exists(def.name)) source = ' [file]';
    } catch (err) {
      if (!(err instanceof ControlReadError)) throw err;
      bad++;
      lines = [`UNREADABLE: ${err.message} (whatever reads it will defer until this is fixed)`];
    }
    const [first = '', ...rest] = lines;
    out.push(`${def.name}:${source} ${first}`, ...indent(rest), `    -- ${def.doc}`, '');
  }
  const known = new Set<string>(CATALOGUE.map((d) => d.name));
  let others: string[] = [];
  try {
    others = readdirSync(join(root, 'control'))
      .filter((n) => !known.has(n) && !n.endsWith('.tmp'))
      .sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') {
      bad++;
      out.push(`control/: UNREADABLE (${code ?? String(err)})`, '');
    } else out.push('control/: missing (every value above is a default)', '');
  }
  for (const n of others) out.push(`${n}: not a quail control file; nothing reads it`);
  if (others.length > 0) out.push('');
  // Lines qmail passes over without a word (Control.ignored; quail start logs the same as quail.warning at each load)
  const junk = c.ignored().filter((u) => u.line !== undefined);
  for (const u of junk) out.push(`control/${u.name}:${u.line ?? 0}: ${u.why}`);
  if (junk.length > 0)
    out.push(
      `${junk.length} control line(s) above do nothing or not what they seem (qmail reads them so too); fix or remove them (quail start reads virtualdomains again on SIGHUP)`,
      '',
    );
  if (bad > 0) out.push(`${bad} control file(s) could not be read.`);
  return out.join('\n').replace(/\n*$/, '\n');
}

/** Markdown for docs/CONTROL.md, one section per catalogue entry (kept in step by showctl.test.ts). */
export function controlDoc(): string {
  const syntax: Record<ControlDef['kind'], string> = {
    single: 'single value: the first line, trailing spaces and tabs removed (docs/QMAIL.md 0.4)',
    list: 'list: one entry per line; `#` lines and empty lines ignored; trailing spaces/tabs removed, leading kept (0.2)',
    map: 'mapping: `pattern:value` lines split at the first `:`; the last line for a pattern wins (0.3)',
    number: 'number: the leading digits of the first line; anything else counts as missing (0.5)',
    cdb: 'constant database (binary), built by a quail command',
    lines: 'text, read as a whole',
  };
  const dflt = (def: ControlDef): string => {
    const d = def.default;
    switch (d.from) {
      case 'none':
        return 'none';
      case 'literal':
        return `\`${JSON.stringify(d.value).slice(1, -1)}\``;
      case 'number':
        return `${d.value}${def.max !== undefined ? ` (values above ${def.max} count as ${def.max})` : ''}`;
      case 'me':
        return d.fallback !== undefined
          ? `the value of \`me\`; without \`me\`, the word \`${d.fallback}\``
          : 'the value of `me`';
    }
  };
  return CATALOGUE.map((def) =>
    [
      `## ${def.name}`,
      '',
      def.doc,
      '',
      `- syntax: ${syntax[def.kind]}${def.wraps !== undefined ? `, modulo 2^32 as qmail's C int (${def.wraps})` : ''}`,
      `- default when missing: ${dflt(def)}`,
      `- read by: ${def.readBy}`,
      `- a change applies: ${def.applies}`,
      '',
    ].join('\n'),
  ).join('\n');
}

export function register(program: Command): void {
  addRootOption(
    program
      .command('showctl')
      .description('show every control file: value, whether it comes from the file or a default, and what it means')
      .option('--doc', 'print the generated part of docs/CONTROL.md instead'),
  ).action(
    action('showctl', (o: { root?: string; doc?: boolean }) => {
      if (o.doc) {
        process.stdout.write(controlDoc());
        return;
      }
      const root = resolveRoot(o.root);
      needRoot(root);
      process.stdout.write(showctl(root));
    }),
  );
}
