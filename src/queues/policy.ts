// control/queues: the named queues and their policies (one line each: `NAME key=value ...`), parsed and checked.
import { parseMap, type Control, type MapEntry } from '../control/index.js';

/** The queue every message joins when no rule says otherwise; its policy is the ordinary control files, unchanged. */
export const DEFAULT_QUEUE = 'default';

/** How a queue bounces: qmail's plain text, RFC 3464, or not at all (failures are logged, nobody is told). */
export type BounceMode = 'qsbmf' | 'dsn' | 'none';

/**
 * One named queue's policy. Every field left out is the ordinary control file's value (queuelifetime,
 * concurrencylocal, bounceformat, outgoingip, helohost, smtproutes ...), so a queue line says only what differs.
 */
export interface QueuePolicy {
  readonly name: string;
  /** Seconds a message may stay before temporary failures become permanent (queuelifetime). */
  readonly lifetime?: number;
  /** Seconds to wait after the 1st, 2nd ... deferral (the last repeats); absent: qmail's schedule (F.2). */
  readonly retry?: readonly number[];
  readonly concurrencylocal?: number;
  readonly concurrencyremote?: number;
  readonly bounces?: BounceMode;
  readonly bouncefrom?: string;
  readonly bouncehost?: string;
  readonly doublebounceto?: string;
  readonly doublebouncehost?: string;
  /** Source address of remote deliveries (outgoingip). */
  readonly outgoingip?: string;
  /** The name said in HELO/EHLO (helohost). */
  readonly helohost?: string;
  /** This queue's own smtproutes (replacing control/smtproutes for it, not added to it); absent: the file's. */
  readonly routes?: ReadonlyMap<string, MapEntry>;
}

export interface PolicyError {
  /** control/queues or control/queuerules. */
  readonly file: 'queues' | 'queuerules';
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}

export interface QueuePolicies {
  /** Named queues by name; `default` is never here (it is the control files). */
  readonly queues: ReadonlyMap<string, QueuePolicy>;
  readonly errors: readonly PolicyError[];
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** The catalogue's cap for concurrencylocal/concurrencyremote (qmail's conf-spawn limit). */
const MAX_CONCURRENCY = 120;

export const isQueueName = (s: string): boolean => NAME_RE.test(s);

const NUMBER_KEYS = ['lifetime', 'concurrencylocal', 'concurrencyremote'] as const;
const WORD_KEYS = ['bouncefrom', 'bouncehost', 'doublebounceto', 'doublebouncehost', 'outgoingip', 'helohost'] as const;
const KEYS = [...NUMBER_KEYS, ...WORD_KEYS, 'retry', 'bounces', 'route'];

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Applies one `key=value`; returns why it is wrong, or undefined. */
function applyOption(p: Mutable<QueuePolicy>, key: string, value: string, routes: string[]): string | undefined {
  if ((NUMBER_KEYS as readonly string[]).includes(key)) {
    if (!/^\d{1,10}$/.test(value)) return `${key}=${value}: the value must be a number`;
    const n = Number(value);
    if (key === 'lifetime') p.lifetime = n;
    else {
      if (n < 1) return `${key}=${value}: at least 1`;
      p[key as 'concurrencylocal' | 'concurrencyremote'] = Math.min(n, MAX_CONCURRENCY);
    }
    return undefined;
  }
  if ((WORD_KEYS as readonly string[]).includes(key)) {
    if (value === '') return `${key}= needs a value`;
    p[key as (typeof WORD_KEYS)[number]] = value;
    return undefined;
  }
  switch (key) {
    case 'retry': {
      if (value === 'qmail') return undefined;
      const parts = value.split(',');
      if (!parts.every((x) => /^\d{1,9}$/.test(x) && Number(x) > 0))
        return `retry=${value}: qmail, or seconds after each deferral separated by commas (300,900,3600)`;
      p.retry = parts.map(Number);
      return undefined;
    }
    case 'bounces':
      if (value !== 'qsbmf' && value !== 'dsn' && value !== 'none') return `bounces=${value}: qsbmf, dsn or none`;
      p.bounces = value;
      return undefined;
    case 'route':
      // One smtproutes line (docs/QMAIL.md E.2): domain:relay[:port], `:relay` for every domain.
      if (!value.includes(':')) return `route=${value}: an smtproutes line, domain:relay[:port]`;
      routes.push(value);
      return undefined;
  }
  return `unknown option "${key}" (${KEYS.map((k) => `${k}=`).join(', ')})`;
}

/** Parses control/queues text; bad lines are reported and left out (the rest still applies). */
export function parseQueues(text: string): QueuePolicies {
  const queues = new Map<string, QueuePolicy>();
  const errors: PolicyError[] = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const err = (reason: string): void => void errors.push({ file: 'queues', line: i + 1, text: l, reason });
    const [name = '', ...opts] = l.split(/\s+/);
    if (!isQueueName(name)) return err(`"${name}" is not a queue name (a-z, 0-9, . _ -; at most 64)`);
    if (name === DEFAULT_QUEUE)
      return err(
        'the default queue is configured by the ordinary control files (queuelifetime, concurrencyremote ...)',
      );
    if (queues.has(name)) return err(`queue ${name} is defined twice`);
    const p: Mutable<QueuePolicy> = { name };
    const routes: string[] = [];
    for (const o of opts) {
      const eq = o.indexOf('=');
      if (eq <= 0) return err(`option "${o}" is not key=value`);
      const problem = applyOption(p, o.slice(0, eq), o.slice(eq + 1), routes);
      if (problem !== undefined) return err(problem);
    }
    if (routes.length > 0) p.routes = parseMap(`${routes.join('\n')}\n`);
    queues.set(name, p);
  });
  return { queues, errors };
}

/** control/queues from a snapshot (missing: no named queues). Throws ControlReadError when unreadable. */
export function queuesFrom(control: Control): QueuePolicies {
  const t = control.raw('queues');
  return t === null ? { queues: new Map(), errors: [] } : parseQueues(t);
}
