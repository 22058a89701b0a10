// control/queuerules: which queue a message joins, tried in order, first match wins; the choice says why.
import { asciiLower, splitAddress } from '../core/index.js';
import type { Control } from '../control/index.js';
import { DEFAULT_QUEUE, isQueueName, queuesFrom, type PolicyError } from './policy.js';

/**
 * What a rule looks at. `sender` is forgeable (anyone may write any MAIL FROM); `auth` is the AUTH login,
 * which the server checked; `listener` is where the message came in (`HOST:PORT`).
 */
export type RuleKind = 'listener' | 'auth' | 'sender' | 'rcpt' | 'bounce';

export interface QueueRule {
  readonly line: number;
  readonly kind: RuleKind;
  /** A domain (`example.com`), its subdomains (`.example.com`), `*`, or for `listener` HOST:PORT. */
  readonly pattern: string;
  readonly queue: string;
  /** `filter=/PATH`: a qmail-queue program the message goes through (it queues with `quail queue-inject`). */
  readonly filter?: string;
  readonly text: string;
}

/** What is known about a message when it is queued. */
export interface QueueFacts {
  /** `HOST:PORT` of the listener it came in on (SMTP only). */
  readonly listener?: string;
  /** The listener's own `queue=` option: chosen before any rule. */
  readonly listenerQueue?: string;
  /** The AUTH login (its domain is what `auth` rules match). */
  readonly auth?: string;
  readonly sender: string;
  readonly recipients: readonly string[];
  /** A bounce quail itself queues (not a message with an empty sender from outside). */
  readonly bounce?: boolean;
}

export interface QueueChoice {
  readonly queue: string;
  /** Why, for the log, the envelope's meta and `quail explain`: `queuerules line 3: auth example.com bulk`. */
  readonly why: string;
  /** The matching rule's `filter=` program, if it names one. */
  readonly filter?: string;
}

export interface QueueRules {
  readonly rules: readonly QueueRule[];
  /** The queue names a rule may name: `default` and those of control/queues. */
  readonly known: ReadonlySet<string>;
  readonly errors: readonly PolicyError[];
}

const KINDS: readonly RuleKind[] = ['listener', 'auth', 'sender', 'rcpt', 'bounce'];

/** Parses control/queuerules; a rule naming a queue not in `known` is an error and left out. */
export function parseRules(text: string, known: ReadonlySet<string>): QueueRules {
  const rules: QueueRule[] = [];
  const errors: PolicyError[] = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const err = (reason: string): void => void errors.push({ file: 'queuerules', line: i + 1, text: l, reason });
    const all = l.split(/\s+/);
    // an optional last word filter=/PATH: the qmail-queue program this rule's messages go through
    const last = all[all.length - 1] ?? '';
    const filter = last.startsWith('filter=') ? last.slice('filter='.length) : undefined;
    const words = filter === undefined ? all : all.slice(0, -1);
    if (filter !== undefined && !/^\/[^\s,"]+$/.test(filter))
      return err(`filter=${filter}: expected the absolute path of a qmail-queue program (filter=/PATH)`);
    const kind = words[0] as RuleKind;
    if (!KINDS.includes(kind)) return err(`unknown rule "${words[0]}" (${KINDS.join(', ')})`);
    // `bounce QUEUE` has no pattern.
    const [pattern, queue] = kind === 'bounce' ? ['*', words[1]] : [words[1], words[2]];
    if (words.length !== (kind === 'bounce' ? 2 : 3) || pattern === undefined || queue === undefined)
      return err(
        kind === 'bounce' ? 'expected: bounce QUEUE [filter=/PATH]' : `expected: ${kind} PATTERN QUEUE [filter=/PATH]`,
      );
    if (!isQueueName(queue)) return err(`"${queue}" is not a queue name`);
    if (!known.has(queue)) return err(`queue ${queue} is not defined in control/queues`);
    if (kind === 'listener' && !/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/.test(pattern))
      return err(`listener ${pattern}: expected ADDRESS:PORT as in control/listeners`);
    rules.push({
      line: i + 1,
      kind,
      pattern: asciiLower(pattern),
      queue,
      ...(filter !== undefined ? { filter } : {}),
      text: l,
    });
  });
  return { rules, known, errors };
}

/** rcpthosts-style domain match: `example.com` itself, `.example.com` its subdomains, `*` anything. */
export function domainMatches(pattern: string, domain: string): boolean {
  if (pattern === '*') return true;
  const d = asciiLower(domain);
  return pattern.startsWith('.') ? d.endsWith(pattern) : d === pattern;
}

const domainOf = (address: string): string => (address.includes('@') ? splitAddress(address).domain : '');

function matches(r: QueueRule, f: QueueFacts): boolean {
  switch (r.kind) {
    case 'listener':
      return f.listener !== undefined && asciiLower(f.listener) === r.pattern;
    case 'auth':
      return f.auth !== undefined && f.auth.includes('@') && domainMatches(r.pattern, domainOf(f.auth));
    case 'sender':
      return f.sender.includes('@') && domainMatches(r.pattern, domainOf(f.sender));
    case 'rcpt':
      return f.recipients.some((a) => a.includes('@') && domainMatches(r.pattern, domainOf(a)));
    case 'bounce':
      return f.bounce === true;
  }
}

/** The queue for a message: the listener's queue= option, else the first matching rule, else `default`. */
export function chooseQueue(rules: QueueRules, f: QueueFacts): QueueChoice {
  if (f.listenerQueue !== undefined && rules.known.has(f.listenerQueue))
    return { queue: f.listenerQueue, why: `listener ${f.listener ?? '?'} queue=${f.listenerQueue}` };
  for (const r of rules.rules)
    if (matches(r, f))
      return {
        queue: r.queue,
        why: `queuerules line ${r.line}: ${r.text}`,
        ...(r.filter !== undefined ? { filter: r.filter } : {}),
      };
  return { queue: DEFAULT_QUEUE, why: 'no rule matched' };
}

/** The rules parsed from each Control snapshot, kept as long as the snapshot lives (an SMTP session's). */
const parsedRules = new WeakMap<Control, QueueRules>();

/**
 * control/queues and control/queuerules from one snapshot, parsed once per snapshot: the files of a snapshot never
 * change, so a session's second message reuses the first one's rules. Throws ControlReadError when either is
 * unreadable (nothing is kept then: the next call tries again).
 */
export function rulesFrom(control: Control): QueueRules {
  const kept = parsedRules.get(control);
  if (kept !== undefined) return kept;
  const policies = queuesFrom(control);
  const known = new Set([DEFAULT_QUEUE, ...policies.queues.keys()]);
  const t = control.raw('queuerules');
  const parsed = t === null ? { rules: [], known, errors: [] } : parseRules(t, known);
  const rules = { ...parsed, errors: [...policies.errors, ...parsed.errors] };
  parsedRules.set(control, rules);
  return rules;
}
