// SMTP in `quail start`: the smtp and submission kinds of the services table, in this process or the smtpd child.
import { errText, QuailError } from '../core/index.js';
import { Control, ControlFileCache } from '../control/index.js';
import { availableParallelism } from 'node:os';
import {
  listenerLimits,
  loadTlsContext,
  SmtpListener,
  tooManyReply,
  type ListenerKind,
  type ListenerSpec,
} from '../smtpd/index.js';
import { qmailQueueFilter } from '../filter/index.js';
import { DirectoryLink } from './directory-link.js';
import { HeldAutoTurn, HeldEtrn } from './held-link.js';
import { InboundLink } from './msgauth-link.js';
import { rblResolverFor } from './dns-link.js';
import { takeLookupBatch, type LookupBatch } from './lookup-batch.js';
import { keyValues, type HostPort } from './listeners.js';
import type { EventLog } from './log.js';
import type { FromServiceChild } from './privchild.js';
import type { KindDef, ServiceDef } from './services.js';

/**
 * The SMTP child's messages: the lifecycle ones and the directory lookup times for the metrics (a queued message
 * travels as the `smtp.queued` log event).
 */
export type FromSmtpChild = FromServiceChild<LookupBatch>;

/**
 * The options of smtp and submission lines (docs/LISTENERS.md): numbers (tarpitcount/tarpitdelay as qmail's tarpit
 * patch), senderauth's two words, authcheck (inbound SPF/DKIM/DMARC, src/msgauth: off, header (smtp's default),
 * reject (550 on DMARC p=reject)), the listener's own acceptance (rcpthosts=none, auth=, tls=required) and queue=.
 */
const NUMERIC_OPTIONS = [
  'databytes',
  'maxconn',
  'maxperip',
  'maxrcpt',
  'maxline',
  'maxerrors',
  'maxnoop',
  'maxunsent',
  'tarpitcount',
  'tarpitdelay',
  'greetdelay',
  'rbltimeout',
  'rbldeadline',
  'stresstimeout',
];
const WORD_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  senderauth: ['on', 'off'],
  authcheck: ['off', 'header', 'reject'],
  auth: ['required', 'offered', 'off'],
  tls: ['required'],
  rblbounce: ['on', 'off'],
  rblfail: ['open', 'closed'],
};

/** A DNS name a blocklist lives under (`rbl=`, `rblallow=`). */
const DNS_NAME =
  /^(?=.{1,253}\.?$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;
/** A file of control/ a listener names instead of the common one (`rcpthosts=`, `tcprules=`). */
const CONTROL_FILE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

/** Why `key=value` is not a valid smtp/submission option, or undefined when it is. */
function optionProblem(key: string, value: string): string | undefined {
  if (NUMERIC_OPTIONS.includes(key))
    return /^\d{1,12}$/.test(value) ? undefined : `option ${key}=${value}: the value must be a number`;
  if (key === 'queue')
    return /^[a-z0-9][a-z0-9._-]{0,63}$/.test(value)
      ? undefined
      : `option queue=${value}: a queue name of control/queues (a-z, 0-9, . _ -)`;
  if (key === 'rcpthosts' || key === 'tcprules')
    return (key === 'rcpthosts' && value === 'none') || CONTROL_FILE.test(value)
      ? undefined
      : `option ${key}=${value}: the name of a file in control/ (letters, digits, . _ -)${key === 'rcpthosts' ? ' or none' : ''}`;
  if (key === 'rbl' || key === 'rblallow')
    return DNS_NAME.test(value)
      ? undefined
      : `option ${key}=${value}: a DNS zone, as rblsmtpd's -r/-a (zen.example.org)`;
  if (key === 'filter')
    return value.startsWith('/') && !/[\0\s]/.test(value)
      ? undefined
      : `option filter=${value}: the absolute path of a qmail-queue program (as QMAILQUEUE)`;
  const words = WORD_OPTIONS[key];
  if (words)
    return words.includes(value) ? undefined : `option ${key}=${value}: the value must be ${words.join(' or ')}`;
  return `unknown option "${key}" (${[
    ...NUMERIC_OPTIONS.map((k) => `${k}=N`),
    ...Object.entries(WORD_OPTIONS).map(([k, v]) => `${k}=${v.join('|')}`),
    'queue=NAME',
    'rcpthosts=none|FILE',
    'tcprules=FILE',
    'rbl=ZONE',
    'rblallow=ZONE',
    'filter=/PATH',
  ].join(', ')})`;
}

/** `smtp`/`submission` options → the listener spec, or what is wrong. */
function smtpListenerSpec(where: HostPort, kind: ListenerKind, words: readonly string[]): ListenerSpec | string {
  // rbl= and rblallow= may repeat; rblsmtpd tries its -r and -a sources in the order given, so they are kept in
  // line order as one option, `base +base ...` (`+` = anti-list), the form src/smtpd reads
  const sources: string[] = [];
  const rest: string[] = [];
  for (const w of words) {
    const m = /^(rbl|rblallow)=(.*)$/.exec(w);
    if (m === null) {
      rest.push(w);
      continue;
    }
    const problem = optionProblem(m[1] ?? '', m[2] ?? '');
    if (problem !== undefined) return problem;
    sources.push(`${m[1] === 'rblallow' ? '+' : ''}${(m[2] ?? '').toLowerCase()}`);
  }
  const options = keyValues(rest);
  if (typeof options === 'string') return options;
  for (const [k, v] of Object.entries(options)) {
    const problem = optionProblem(k, v);
    if (problem !== undefined) return problem;
  }
  if (sources.length > 0) options['rbl'] = sources.join(' ');
  return { host: where.host, port: where.port, kind, options };
}

const smtpKind = (kind: ListenerKind, port: number, about: string): KindDef<ListenerSpec> => ({
  kind,
  port,
  about,
  parse: (where, words) => smtpListenerSpec(where, kind, words),
});

function tlsOrNone(root: string, log: EventLog): ReturnType<typeof loadTlsContext> {
  try {
    return loadTlsContext(new Control(root));
  } catch (err) {
    log.event('smtp.error', { error: `control/servercert.pem unusable, STARTTLS off: ${errText(err)}` });
    return undefined;
  }
}

export const SMTP_SERVICE: ServiceDef<ListenerSpec, LookupBatch> = {
  name: 'smtpd',
  what: 'SMTP',
  kinds: [
    smtpKind('smtp', 25, "mail from other servers (qmail-smtpd's rules)"),
    smtpKind('submission', 587, 'mail from your users (RFC 6409): MAIL needs AUTH'),
  ],
  kindOf: (spec) => spec.kind,
  script: new URL('./smtpd-child.js', import.meta.url),
  optionalInDefault: false,
  busyReply: () => '421 4.3.2 service restarting, try again in a minute\r\n',
  // control/smtpdprocesses; 0 or missing: one per two CPUs (at least 1, at most 16), as control/localworkers
  instances: (ctx) => {
    const n = ctx.control.number('smtpdprocesses').value;
    return n > 0 ? n : Math.min(16, Math.max(1, Math.floor(availableParallelism() / 2)));
  },
  admission: (ctx) => ({
    limits: (spec) => {
      const l = listenerLimits(spec);
      return { maxConnections: l.maxConnections, maxPerIp: l.maxPerIp, stress: l.stressMs > 0 };
    },
    refused: (spec, ip, why) => {
      ctx.log.event('smtp.refused', { ip, why, listener: `${spec.host}:${spec.port}` });
      return tooManyReply(why);
    },
    stressChanged: (spec, on, connections) =>
      ctx.log.event('smtp.stress', { listener: `${spec.host}:${spec.port}`, on, connections }),
  }),
  // one SMTP process accepts on the ports itself; root only holds them (docs/PERFORMANCE.md, eleventh pass)
  checksPasswords: true,
  directAccept: { outage: 'smtpd.outage' },
  events: { listening: 'smtp.listening', error: 'smtp.error' },
  listeningFields: (spec) => ({ address: spec.host, port: spec.port, kind: spec.kind }),
  local(specs, ctx) {
    const queue = ctx.queue;
    if (!queue) return Promise.reject(new QuailError('no queue in this process', true));
    let tls = tlsOrNone(ctx.root, ctx.log);
    // Each session still sees control/ as it is when it starts (qmail-smtpd reads its files per session), but a file
    // unchanged since the last session is one stat, not an open, read and close (docs/PERFORMANCE.md).
    const controlFiles = new ControlFileCache(ctx.root);
    const directory = new DirectoryLink(ctx.root, (op, s) => ctx.metrics?.lookup(op, s), controlFiles);
    // one failed-login table for every SMTP listener and the other services: a client does not get twice the guesses
    // on a second port, nor on POP3, ODMR or the web admin
    const authThrottle = ctx.logins.table;
    const checker = new InboundLink(ctx.root);
    const autoturn = new HeldAutoTurn(
      ctx.root,
      (domain) => queue.trigger('flush', domain),
      (event, fields) => ctx.log.event(event, fields),
    );
    // one for every listener: its per-domain rate limit holds whichever port the customer used
    const etrn = new HeldEtrn(ctx.root, (domain) => queue.trigger('flush', domain));
    const listeners = specs.map(
      (spec) =>
        new SmtpListener(spec, {
          controlFor: () => controlFiles.snapshot(),
          queue,
          filter: qmailQueueFilter({ root: ctx.root, path: process.env['PATH'] }),
          etrn,
          autoturn,
          authenticator: ctx.authenticator ?? directory,
          authThrottle,
          recipients: directory,
          senders: directory,
          checker,
          dns: rblResolverFor(ctx.root),
          tls: () => tls,
          log: (name, fields) => ctx.log.event(name, fields),
        }),
    );
    return Promise.resolve({
      listeners: listeners.map((l) => ({ listen: () => l.listen(), close: (g: number) => l.close(g) })),
      listening: () => ({ starttls: tls !== undefined }),
      reload: () => {
        tls = tlsOrNone(ctx.root, ctx.log);
        return { starttls: tls !== undefined };
      },
      close: () => directory.close(),
    });
  },
  parent(ctx) {
    // a message queued by the child wakes the scheduler here
    const log: EventLog = {
      event: (name, fields, level) => {
        ctx.log.event(name, fields, level);
        if (name === 'smtp.queued') ctx.onQueued(typeof fields['id'] === 'string' ? fields['id'] : undefined);
      },
    };
    return {
      log,
      onMessage: (m) => {
        const metrics = ctx.metrics;
        if (m.type === 'lookups' && metrics) takeLookupBatch(m, (op, s) => metrics.lookup(op, s));
      },
      close: () => Promise.resolve(),
    };
  },
};
