// qmail-remote for one or several recipients of one message: controls, next hop, connect, dialogue, reports.
import { readFileSync } from 'node:fs';
import { errText, splitAddress, type DeliveryResult } from '../core/index.js';
import type { Control, MapEntry } from '../control/index.js';
import type { QueueRemotePolicy, RemoteJob } from './types.js';
import { lookupRoute, routeCandidates, type Route } from './routes.js';
import { localAddresses, resolveTargets, type RemoteResolver, type Target } from './mx.js';
import { openSocket, SmtpClient } from './client.js';
import { makeResolver } from './dns.js';
import { classifierFor, ReplyRulesError } from './classify.js';
import { openSession, transaction, type Classifier, type Envelope, type TlsPolicy } from './session.js';
import type { ConnectionPool } from './pool.js';
import type { Tcpto } from './tcpto.js';
import type { EightBitCache } from './message.js';
import { asciiLower } from '../core/index.js';

export interface RemoteOptions {
  /** A fresh snapshot of the control files (qmail-remote reads them per delivery). */
  readonly control: Control;
  /** DNS for MX, A and AAAA lookups; default: control/dnsservers, else the system's. */
  readonly resolver?: RemoteResolver;
  /** This machine's addresses for the best-MX check (E.4); default: the interface addresses. */
  readonly ipme?: ReadonlySet<string>;
  /** Reply classification; default control/replyrules, then the built-in rules (replyrules.ts). */
  readonly classify?: Classifier;
  /** Random numbers for the shuffle of equal MX preferences. */
  readonly random?: () => number;
  /** The port for MX and implicit-MX deliveries (default 25; tests use a free port). */
  readonly mxPort?: number;
}

/** What a RemoteEngine adds: connection reuse and per-destination limits, the memory of timeouts and of 8-bit scans. */
export interface DeliverExtras {
  readonly pool?: ConnectionPool;
  readonly tcpto?: Tcpto;
  readonly eightBits?: EightBitCache;
}

const TEMP_CONTROL = 'Unable to read control files. (#4.3.0)\n';
const TEMP_NOCONN = "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n";

const deferral = (report: string): DeliveryResult => ({ result: 'deferral', report });

interface Settings {
  readonly helo: string;
  readonly connectMs: number;
  readonly remoteMs: number;
  readonly route: Route;
  readonly tls: TlsPolicy;
  readonly outgoingIp: string | undefined;
  /** control/smtputf8 `qmail`: a non-ASCII address goes to a server without SMTPUTF8 as it is, as qmail-remote. */
  readonly sendEightBitAddresses: boolean;
}

/** control/tlsdestinations for `host`: the first of the smtproutes candidates present decides. */
function tlsPolicy(host: string, map: ReadonlyMap<string, MapEntry> | null): TlsPolicy {
  if (map === null) return { mode: 'may' };
  for (const cand of routeCandidates(host)) {
    const e = map.get(asciiLower(cand));
    if (e === undefined) continue;
    const v = e.value.trim();
    if (v === 'none') return { mode: 'none' };
    if (v === 'verify') return { mode: 'verify' };
    if (v === '' || v === 'may') return { mode: 'may' };
    // A CA file: verified against it. Unreadable → the whole delivery waits (readSettings' catch).
    return { mode: 'verify', ca: readFileSync(v) };
  }
  return { mode: 'may' };
}

function readSettings(control: Control, host: string, policy: QueueRemotePolicy = {}): Settings | null {
  try {
    const helo = policy.helo ?? control.single('helohost').value;
    if (helo === null) return null;
    return {
      helo,
      connectMs: control.number('timeoutconnect').value * 1000,
      remoteMs: control.number('timeoutremote').value * 1000,
      route: lookupRoute(host, policy.routes ?? control.map('smtproutes').value),
      tls: tlsPolicy(host, policy.tlsdestinations ?? control.map('tlsdestinations').value),
      outgoingIp: policy.outgoingIp ?? control.single('outgoingip').value ?? undefined,
      sendEightBitAddresses: control.single('smtputf8').value === 'qmail',
    };
  } catch {
    return null; // an unreadable control file: temporary, never a silent default (docs/QMAIL.md 0)
  }
}

/** Delivers job.messagePath to job.recipient; never throws (unknown errors are deferrals). */
export async function deliverRemote(job: RemoteJob, opts: RemoteOptions): Promise<DeliveryResult> {
  const [r] = await deliverBatch([job], opts);
  return r ?? deferral('Unexpected remote delivery error: no result. (#4.3.0)\n');
}

/**
 * Delivers one message to several recipients of the same host in one SMTP transaction: one result per job,
 * in order. The jobs must share sender, message file and the host after the last `@` (the caller groups);
 * a job that does not is delivered in a transaction of its own. Never throws.
 */
export async function deliverBatch(
  jobs: readonly RemoteJob[],
  opts: RemoteOptions,
  extras: DeliverExtras = {},
): Promise<DeliveryResult[]> {
  const first = jobs[0];
  if (first === undefined) return [];
  const host = asciiLower(splitAddress(first.recipient).domain);
  const same = (j: RemoteJob): boolean =>
    j.sender === first.sender &&
    j.messagePath === first.messagePath &&
    (j.prefix ?? '') === (first.prefix ?? '') &&
    asciiLower(splitAddress(j.recipient).domain) === host;
  if (!jobs.every(same)) {
    return (await Promise.all(jobs.map((j) => deliverBatch([j], opts, extras)))).flat();
  }
  try {
    return await deliver(host, jobs, opts, extras);
  } catch (err) {
    const r = deferral(`Unexpected remote delivery error: ${errText(err)}. (#4.3.0)\n`);
    return jobs.map(() => r);
  }
}

async function deliver(
  host: string,
  jobs: readonly RemoteJob[],
  opts: RemoteOptions,
  extras: DeliverExtras,
): Promise<DeliveryResult[]> {
  const all = (r: DeliveryResult): DeliveryResult[] => jobs.map(() => r);
  // The host as written (qmail compares smtproutes case-insensitively; the DNS does not care).
  const settings = readSettings(opts.control, host, jobs[0]?.policy);
  if (settings === null) return all(deferral(TEMP_CONTROL));
  let resolver = opts.resolver;
  if (resolver === undefined) {
    try {
      resolver = makeResolver(opts.control);
    } catch {
      return all(deferral(TEMP_CONTROL));
    }
  }
  const resolved = await resolveTargets(host, settings.route, resolver, opts.ipme ?? localAddresses(), {
    ...(opts.random ? { random: opts.random } : {}),
  });
  if (resolved.kind === 'temporary') return all(deferral(resolved.report));
  if (resolved.kind === 'permanent') return all({ result: 'failure', report: resolved.report });
  const port = settings.route.kind === 'relay' ? settings.route.port : (opts.mxPort ?? 25);
  const env: Envelope = {
    sender: jobs[0]?.sender ?? '',
    recipients: jobs.map((j) => j.recipient),
    messagePath: jobs[0]?.messagePath ?? '',
    ...(jobs[0]?.prefix !== undefined ? { prefix: jobs[0].prefix } : {}),
  };
  let classify = opts.classify;
  if (classify === undefined) {
    try {
      classify = classifierFor(opts.control.list('replyrules').value);
    } catch (err) {
      // Unreadable or a line that is not a rule: deliveries wait, the report says which line.
      const why = err instanceof ReplyRulesError ? ` ${err.message}.` : '';
      return all(deferral(`Unable to read control files.${why} (#4.3.0)\n`));
    }
  }
  let last: DeliveryResult | undefined;
  for (const t of resolved.targets) {
    if (extras.tcpto?.skip(t.ip)) continue; // qmail-tcpto: timed out recently
    const out = await onTarget(t, port, settings, env, classify, extras);
    if (out.kind === 'done') return out.results;
    last = out.result ?? last;
  }
  // Every address failed before a transaction: qmail's "no connection" unless a server said why.
  return all(last ?? deferral(TEMP_NOCONN));
}

/** Every connection to `ip` allowed at once stayed busy for timeoutconnect (a tarpit, or a host far behind). */
function busyReport(ip: string, perHost: number, s: Settings): string {
  return (
    `Sorry, too many connections to ${ip} are busy already (concurrencyremotehost is ${perHost}); ` +
    `none became free within timeoutconnect (${s.connectMs / 1000} s). (#4.4.5)\n`
  );
}

type TargetOutcome = { kind: 'done'; results: DeliveryResult[] } | { kind: 'next'; result?: DeliveryResult };

/** Tries one address: a pooled connection first, else a new one (plaintext again if opportunistic TLS broke). */
async function onTarget(
  t: Target,
  port: number,
  s: Settings,
  env: Envelope,
  classify: Classifier,
  extras: DeliverExtras,
): Promise<TargetOutcome> {
  const key = `${t.ip}:${port}`;
  const profile = `${s.helo}|${JSON.stringify(s.tls)}|${s.outgoingIp ?? ''}`;
  // Waiting for this address holds one of the scheduler's concurrencyremote slots: at most timeoutconnect, as a
  // connection would, then the delivery waits for its retry and frees the slot for mail to other hosts.
  let release = (): void => undefined;
  if (extras.pool) {
    const got = await extras.pool.slot(key, s.connectMs);
    if (got === undefined) return { kind: 'next', result: deferral(busyReport(t.ip, extras.pool.perHost, s)) };
    release = got;
  }
  try {
    for (let tryTls = true, attempts = 0; attempts < 3; attempts++) {
      const pooled = extras.pool?.take(key, profile);
      let client: SmtpClient;
      let ext: ReadonlyMap<string, string>;
      if (pooled) {
        ({ client, ext } = pooled);
      } else {
        const sock = await openSocket(t.ip, port, s.connectMs, s.outgoingIp);
        if (typeof sock === 'string') {
          extras.tcpto?.record(t.ip, sock === 'timeout');
          return { kind: 'next' };
        }
        extras.tcpto?.record(t.ip, false);
        client = new SmtpClient(sock, s.remoteMs);
        const opened = await openSession(client, { ip: t.ip, servername: t.name, helo: s.helo, tls: s.tls, tryTls });
        if (opened.kind === 'failed') {
          client.close();
          if (opened.tlsFailed && tryTls) {
            tryTls = false; // opportunistic: the same address again, without STARTTLS
            continue;
          }
          return { kind: 'next', result: opened.result };
        }
        ext = opened.ext;
      }
      const out = await transaction(client, t.ip, env, ext, classify, pooled !== undefined, extras.eightBits, {
        sendEightBitAddresses: s.sendEightBitAddresses,
      });
      if (out.stale) continue; // the pooled connection had died while idle: open a fresh one
      if (out.reusable && extras.pool) extras.pool.put(key, { client, ext, profile });
      else if (out.reusable) client.quit();
      return { kind: 'done', results: out.results };
    }
    return { kind: 'next' };
  } finally {
    release();
  }
}
