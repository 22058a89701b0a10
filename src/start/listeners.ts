// control/listeners: one listener per line, `ADDRESS:PORT KIND [option...]` (docs/LISTENERS.md). The kinds and
// what their options mean are the services table's (services.ts); this file only cuts the lines up.

export const DEFAULT_LISTENERS =
  '127.0.0.1:2525 smtp\n127.0.0.1:2587 submission\n127.0.0.1:2110 pop3\n127.0.0.1:2995 pop3 tls=implicit\n';

export interface ListenerError {
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}

/** What every listener has: where it listens. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** One line of the file, cut up: where, which kind, and the option words after the kind (unchecked). */
export interface ListenerLine extends HostPort {
  readonly line: number;
  readonly text: string;
  readonly kind: string;
  readonly words: readonly string[];
}

/** `HOST:PORT` or `[v6]:PORT` → host and port, or a reason. */
export function parseHostPort(s: string): HostPort | string {
  const m = /^(?:\[([^\]]+)\]|([^:\s]*)):(\d{1,5})$/.exec(s);
  if (!m) return `"${s}" is not ADDRESS:PORT`;
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range`;
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** The lines of the file; '#' and blank lines ignored, a line without ADDRESS:PORT is an error. */
export function splitListeners(text: string): { lines: ListenerLine[]; errors: ListenerError[] } {
  const lines: ListenerLine[] = [];
  const errors: ListenerError[] = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const [addr = '', kind = '', ...words] = l.split(/\s+/);
    const hp = parseHostPort(addr);
    if (typeof hp === 'string') errors.push({ line: i + 1, text: l, reason: hp });
    else lines.push({ ...hp, line: i + 1, text: l, kind, words });
  });
  return { lines, errors };
}

/** `key=value` words → a record, or the first word that is not key=value. */
export function keyValues(words: readonly string[]): Record<string, string> | string {
  const out: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) return `option "${w}" is not key=value`;
    out[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return out;
}

/** The `queue=` option of the smtp/submission listener on `hostPort` in control/listeners text, if any (quail explain). */
export function listenerQueue(text: string, hostPort: string): string | undefined {
  const hp = parseHostPort(hostPort);
  if (typeof hp === 'string') return undefined;
  const line = splitListeners(text).lines.find(
    (l) => l.host === hp.host && l.port === hp.port && (l.kind === 'smtp' || l.kind === 'submission'),
  );
  const options = line === undefined ? undefined : keyValues(line.words);
  return options === undefined || typeof options === 'string' ? undefined : options['queue'];
}
