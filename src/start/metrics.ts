// Prometheus metrics of `quail start`: counted in the root process from the events every child already sends it.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventName } from './events.js';
import type { EventLog } from './log.js';

/**
 * Why from events: every SMTP, POP3 and send-process event already reaches the root process over the child's IPC
 * channel (privchild.ts, send.ts relay them to the one log), so counting them there costs no message of its own and
 * nothing is added to the path of a message. Only what no event says (directory lookup times, measured in the SMTP
 * child) travels as a small batch every few seconds (lookup-batch.ts). The queue's size and oldest age are read at
 * each scrape from the names in queue/env/ (a queue id starts with its birth time): no queue file is opened.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly connections = this.counter('quail_smtp_connections_total', 'SMTP connections accepted', ['kind']);
  private readonly tls = this.counter('quail_smtp_tls_total', 'SMTP sessions that completed STARTTLS', []);
  private readonly auth = this.counter('quail_smtp_auth_total', 'SMTP AUTH attempts by result', ['result']);
  private readonly received = this.counter(
    'quail_messages_received_total',
    'messages accepted by SMTP (committed to the queue), by protocol (smtp, esmtp, esmtps, esmtpsa, ...)',
    ['protocol'],
  );
  private readonly refused = this.counter(
    'quail_messages_refused_total',
    'SMTP refusals: connections, MAIL/RCPT and messages refused, by reason',
    ['stage', 'reason'],
  );
  private readonly queued = this.counter(
    'quail_messages_queued_total',
    'messages the scheduler took up (received, injected, forwards and bounces)',
    [],
  );
  private readonly deliveries = this.counter(
    'quail_deliveries_total',
    'delivery attempts by channel (local, remote) and result (delivered, deferred, failed)',
    ['channel', 'result'],
  );
  private readonly bounces = this.counter('quail_bounces_total', 'bounce messages queued, by kind', ['kind']);
  private readonly attempt = new Histogram({
    name: 'quail_delivery_duration_seconds',
    help: 'time of one delivery attempt, by channel and result',
    labelNames: ['channel', 'result'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'quail_delivery_latency_seconds',
    help: 'time from the scheduler taking a message up to a successful delivery of a recipient, by channel',
    labelNames: ['channel'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400],
    registers: [this.registry],
  });
  private readonly lookups = new Histogram({
    name: 'quail_directory_lookup_seconds',
    help: 'user directory lookups by the SMTP service (rcpt, sender, auth)',
    labelNames: ['op'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  private readonly pop3Logins = this.counter('quail_pop3_logins_total', 'POP3 logins, by TLS', ['tls']);
  private readonly pop3Sessions = this.counter('quail_pop3_sessions_total', 'logged-in POP3 sessions ended', []);
  private readonly pop3Refused = this.counter('quail_pop3_refused_total', 'POP3 connections or logins refused', []);
  private readonly restarts = this.counter(
    'quail_child_restarts_total',
    'unexpected deaths of a service process (each replaced), by process (smtpd, pop3d, sendd, metricsd, webd, odmrd)',
    ['process'],
  );
  /** Delivery number → its channel and start; forgotten when the send process is replaced (its numbers restart). */
  private readonly running = new Map<string, { channel: string; at: number }>();
  /** Message id → when the scheduler took it up (`send.new`); forgotten at `send.end`. */
  private readonly taken = new Map<string, number>();

  constructor(
    root: string,
    private readonly now: () => number = () => Date.now(),
  ) {
    const envDir = join(root, 'queue', 'env');
    const births = (): number[] => {
      try {
        return readdirSync(envDir)
          .map((n) => parseInt(n.split('-')[0] ?? '', 36))
          .filter((ms) => Number.isFinite(ms));
      } catch {
        return [];
      }
    };
    let seen: number[] = [];
    new Gauge({
      name: 'quail_queue_messages',
      help: 'messages in the queue (queue/env)',
      registers: [this.registry],
      collect() {
        seen = births();
        this.set(seen.length);
      },
    });
    const clock = this.now;
    new Gauge({
      name: 'quail_queue_oldest_age_seconds',
      help: 'age of the oldest message in the queue (0 when empty)',
      registers: [this.registry],
      collect() {
        // collected after quail_queue_messages (registration order): the same directory listing
        this.set(seen.length === 0 ? 0 : Math.max(0, (clock() - Math.min(...seen)) / 1000));
      },
    });
  }

  private counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /** The log that also counts: every event goes to `log` unchanged. */
  wrap(log: EventLog): EventLog {
    return {
      event: (name, fields, level) => {
        log.event(name, fields, level);
        try {
          this.observe(name, fields);
        } catch {
          // a metric must never cost a log line or a session
        }
      },
    };
  }

  /** Directory lookup times measured elsewhere (the SMTP child's batches, or this process's DirectoryLink). */
  lookup(op: string, seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.lookups.observe({ op: word(op) }, seconds);
  }

  /** The exposition text (`text/plain; version=0.0.4`). */
  async render(): Promise<{ readonly contentType: string; readonly text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  observe(name: EventName, f: Readonly<Record<string, unknown>>): void {
    switch (name) {
      case 'smtp.connect':
        return this.connections.inc({ kind: word(f['kind']) });
      case 'smtp.tls':
        return this.tls.inc();
      case 'smtp.auth':
        return this.auth.inc({ result: f['ok'] === true ? 'ok' : 'failed' });
      case 'smtp.queued':
        return this.received.inc({ protocol: word(f['protocol']) });
      case 'smtp.refused':
        return this.refused.inc({ stage: f['bytes'] !== undefined ? 'data' : 'connection', reason: word(f['why']) });
      case 'smtp.reject':
        return this.refused.inc({ stage: f['to'] !== undefined ? 'rcpt' : 'mail', reason: word(f['why']) });
      case 'smtp.queue-failed':
        return this.refused.inc({ stage: 'data', reason: 'queue' });
      case 'pop3.login':
        return this.pop3Logins.inc({ tls: f['tls'] === true ? 'yes' : 'no' });
      case 'pop3.session':
        return this.pop3Sessions.inc();
      case 'pop3.refused':
        return this.pop3Refused.inc();
      case 'smtpd.crashed':
      case 'pop3d.crashed':
      case 'sendd.crashed':
      case 'metricsd.crashed':
      case 'webd.crashed':
      case 'odmrd.crashed':
        if (name === 'sendd.crashed') this.running.clear();
        return this.restarts.inc({ process: name.slice(0, name.indexOf('.')) });
      case 'send.new':
        this.taken.set(String(f['msg']), this.now());
        if (this.taken.size > MAX_TRACKED) this.taken.delete(this.taken.keys().next().value ?? '');
        return this.queued.inc();
      case 'send.end':
        this.taken.delete(String(f['msg']));
        return;
      case 'send.bounce':
        return this.bounces.inc({ kind: word(f['kind']) });
      case 'send.start':
        this.running.set(String(f['delivery']), { channel: word(f['channel']), at: this.now() });
        if (this.running.size > MAX_TRACKED) this.running.delete(this.running.keys().next().value ?? '');
        return;
      case 'send.delivery':
        return this.delivered(f);
      default:
        return;
    }
  }

  private delivered(f: Readonly<Record<string, unknown>>): void {
    const key = String(f['delivery']);
    const start = this.running.get(key);
    this.running.delete(key);
    const channel = start?.channel ?? 'unknown';
    const result = RESULTS[String(f['result'])] ?? 'unknown';
    this.deliveries.inc({ channel, result });
    const t = this.now();
    if (start) this.attempt.observe({ channel, result }, (t - start.at) / 1000);
    const since = this.taken.get(String(f['msg']));
    if (result === 'delivered' && since !== undefined) this.latency.observe({ channel }, (t - since) / 1000);
  }
}

/** qmail-send's words → the metric's (`deferral` is counted as `deferred`, `failure` as `failed`). */
const RESULTS: Readonly<Record<string, string>> = { success: 'delivered', deferral: 'deferred', failure: 'failed' };

/** Deliveries and messages followed at once; past this the oldest entries are forgotten (their times unknown). */
const MAX_TRACKED = 100_000;

/** A label value: a short word as the event has it, anything else `other` (no unbounded label sets from input). */
function word(v: unknown): string {
  const s = typeof v === 'string' ? v.toLowerCase() : typeof v === 'boolean' ? String(v) : '';
  return /^[a-z0-9._-]{1,32}$/.test(s) ? s : 'other';
}
