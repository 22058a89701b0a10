// control/listeners: one listener per line, `ADDRESS:PORT KIND [key=value...]` (docs/LISTENERS.md).
import type { ListenerKind, ListenerSpec } from '../smtpd/index.js';

export const DEFAULT_LISTENERS =
  '127.0.0.1:2525 smtp\n127.0.0.1:2587 submission\n127.0.0.1:2110 pop3\n127.0.0.1:2995 pop3 tls=implicit\n';

export interface ListenerError {
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}

/** `HOST:PORT` or `[v6]:PORT` → host and port, or a reason. */
export function parseHostPort(s: string): { host: string; port: number } | string {
  const m = /^(?:\[([^\]]+)\]|([^:\s]*)):(\d{1,5})$/.exec(s);
  if (!m) return `"${s}" is not ADDRESS:PORT`;
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range`;
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

const KINDS: readonly ListenerKind[] = ['smtp', 'submission'];

/** The options of smtp and submission lines (docs/LISTENERS.md): numbers, and senderauth's two words. */
const NUMERIC_OPTIONS = [
  'databytes',
  'maxconn',
  'maxperip',
  'maxrcpt',
  'maxline',
  'maxerrors',
  'maxnoop',
  'tarpitcount',
  'tarpitdelay',
];
const WORD_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  senderauth: ['on', 'off'],
  rcpthosts: ['none'],
  auth: ['required', 'offered', 'off'],
  tls: ['required'],
};

/** Why `key=value` is not a valid smtp/submission option, or undefined when it is. */
function optionProblem(key: string, value: string): string | undefined {
  if (NUMERIC_OPTIONS.includes(key))
    return /^\d{1,12}$/.test(value) ? undefined : `option ${key}=${value}: the value must be a number`;
  if (key === 'queue')
    return /^[a-z0-9][a-z0-9._-]{0,63}$/.test(value)
      ? undefined
      : `option queue=${value}: a queue name of control/queues (a-z, 0-9, . _ -)`;
  const words = WORD_OPTIONS[key];
  if (words)
    return words.includes(value) ? undefined : `option ${key}=${value}: the value must be ${words.join(' or ')}`;
  return `unknown option "${key}" (${[...NUMERIC_OPTIONS.map((k) => `${k}=N`), ...Object.entries(WORD_OPTIONS).map(([k, v]) => `${k}=${v.join('|')}`), 'queue=NAME'].join(', ')})`;
}

/** Parses the file; '#' and blank lines ignored. Kinds other than smtp/submission (pop3) are left to their owners. */
export function parseListeners(text: string): { listeners: ListenerSpec[]; errors: ListenerError[]; other: string[] } {
  const listeners: ListenerSpec[] = [];
  const errors: ListenerError[] = [];
  const other: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const [addr = '', kind = '', ...opts] = l.split(/\s+/);
    const hp = parseHostPort(addr);
    if (typeof hp === 'string') return errors.push({ line: i + 1, text: l, reason: hp });
    if (!KINDS.includes(kind as ListenerKind)) {
      if (kind === 'pop3') return other.push(l);
      return errors.push({ line: i + 1, text: l, reason: `unknown kind "${kind}" (smtp, submission or pop3)` });
    }
    const options: Record<string, string> = {};
    for (const o of opts) {
      const eq = o.indexOf('=');
      if (eq <= 0) return errors.push({ line: i + 1, text: l, reason: `option "${o}" is not key=value` });
      const problem = optionProblem(o.slice(0, eq), o.slice(eq + 1));
      if (problem !== undefined) return errors.push({ line: i + 1, text: l, reason: problem });
      options[o.slice(0, eq)] = o.slice(eq + 1);
    }
    listeners.push({ ...hp, kind: kind as ListenerKind, options });
  });
  return { listeners, errors, other };
}

/** The `queue=` option of the smtp/submission listener on `hostPort` in control/listeners text, if any (quail explain). */
export function listenerQueue(text: string, hostPort: string): string | undefined {
  const hp = parseHostPort(hostPort);
  if (typeof hp === 'string') return undefined;
  return parseListeners(text).listeners.find((l) => l.host === hp.host && l.port === hp.port)?.options['queue'];
}
