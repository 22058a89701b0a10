// The services `quail start` runs, as one table (Postfix's master.cf): each listener kind of control/listeners,
// the service (process) that serves it, its options; one generic path binds, hands over and stops them all.
import type { AddressInfo } from 'node:net';
import { errText, QuailError } from '../core/index.js';
import type { Control } from '../control/index.js';
import type { FileQueue } from '../queue/index.js';
import type { Authenticator } from '../smtpd/index.js';
import { DEFAULT_LISTENERS, parseHostPort, splitListeners, type HostPort, type ListenerError } from './listeners.js';
import type { EventLog } from './log.js';
import type { EventName } from './events.js';
import type { LoginHub } from './login-hub.js';
import { ServiceChild, type Account, type AdmissionPolicy, type ServiceName } from './privchild.js';
import type { Metrics } from './metrics.js';
import { METRICS_SERVICE } from './metrics-service.js';
import { ODMR_SERVICE } from './odmr.js';
import { POP3_SERVICE } from './pop3.js';
import { SMTP_SERVICE } from './smtp.js';
import { WEB_SERVICE } from './web-service.js';

/** The processes that serve listeners (as root each runs as control/quailuser); `<name>.started` and so on. */
export type { ServiceName } from './privchild.js';

/** One kind of listener: a word in control/listeners. */
export interface KindDef<Spec> {
  readonly kind: string;
  /** The well-known port (docs/LISTENERS.md; a line always names its own). */
  readonly port: number;
  readonly about: string;
  /** The option words after the kind → the listener's spec (sent to the serving process as JSON), or what is wrong. */
  parse(where: HostPort, words: readonly string[]): Spec | string;
}

/** A listener as it is bound: what `quail status` and quail.json show. */
export interface BoundListener extends HostPort {
  readonly kind: string;
}

/** What a service's listeners are in one process (not root): bound here, served here. */
export interface LocalListener {
  /** Binds the spec's address; resolves with the bound one. */
  listen(): Promise<AddressInfo>;
  /** Stop accepting; sessions get graceMs to finish. */
  close(graceMs: number): Promise<void>;
}

export interface LocalService {
  /** In the order of the specs. */
  readonly listeners: readonly LocalListener[];
  /** Extra fields of the `<x>.listening` events (`starttls`). */
  readonly listening?: () => Readonly<Record<string, unknown>>;
  /** SIGHUP; the fields returned go into `quail.reloaded`. */
  reload(): Readonly<Record<string, unknown>> | void;
  /** After the listeners closed: what the service opened. */
  close(): Promise<void>;
}

/** The root process's side of a privilege-separated service: its child's own messages, what it closes at stop. */
export interface ParentSide<Other> {
  readonly log?: EventLog;
  readonly onMessage?: (m: Other) => void;
  close(): Promise<void>;
}

export interface ServiceContext {
  readonly root: string;
  readonly control: Control;
  /** As root: the account the service's child runs as. Undefined: everything in this process. */
  readonly account: Account | undefined;
  readonly log: EventLog;
  /** The specs are the embedded default (no control/listeners): see ServiceDef.optionalInDefault. */
  readonly embedded: boolean;
  /** One process: the queue (the send side's). */
  readonly queue?: FileQueue | undefined;
  /** One process: the SMTP password check instead of the directory (tests). */
  readonly authenticator?: Authenticator | undefined;
  /** A message was queued (by a child): wake the scheduler; with its queue id when known (smtp.queued). */
  readonly onQueued: (id?: string) => void;
  readonly onServing: (pids: readonly number[]) => void;
  readonly onCrash: (crashes: number) => void;
  /** The counts behind the metrics listener (root's, fed by every process's events). */
  readonly metrics?: Metrics | undefined;
  /**
   * The one failed-login table of this quail start (`table`), for every service that checks passwords: used directly
   * in one process; as root the children ask and tell it over IPC (login-hub.ts).
   */
  readonly logins: LoginHub;
}

/** One row of the table: a service, its kinds, and how it is started in one process or as a child. */
export interface ServiceDef<Spec extends HostPort, Other extends { readonly type: string } = never> {
  readonly name: ServiceName;
  /** For error texts: `SMTP`, `POP3`. */
  readonly what: string;
  readonly kinds: readonly KindDef<Spec>[];
  /** The kind a parsed spec is of. */
  kindOf(spec: Spec): string;
  /** The unprivileged child (runs runServiceChild, child-common.ts). */
  readonly script: URL;
  /** A listener of the embedded default that cannot be bound is logged and skipped (else the start fails). */
  readonly optionalInDefault: boolean;
  /** Listeners that need control/servercert.pem to open (implicit TLS); without it: an error, or skipped in the default. */
  readonly needsCert?: { readonly test: (spec: Spec) => boolean; readonly warning: EventName };
  /** What a connection is told when no child takes it in time (undefined: it is closed). */
  busyReply(spec: Spec): string | undefined;
  /** Listeners whose client speaks first in plain HTTP: a connection its child died with gets busyReply (privchild.ts). */
  readonly clientSpeaksFirst?: { readonly test: (spec: Spec) => boolean; readonly event: EventName };
  /** How many children serve the listeners at once (privchild.ts); 1 when not given. */
  instances?(ctx: ServiceContext): number;
  /** Root counts the connections across the children (privchild.ts; needed with more than one). */
  admission?(ctx: ServiceContext): AdmissionPolicy<Spec>;
  /** Checks passwords (SMTP AUTH, POP3, ODMR, the web admin): its failures count in the one table (ctx.logins). */
  readonly checksPasswords?: boolean;
  /** With one child, it accepts on the listening sockets itself (privchild.ts directAccept; the event of an outage). */
  readonly directAccept?: { readonly outage: EventName };
  /** The `<x>.listening` event of a bound listener, and the `<x>.error` of one not opened. */
  readonly events: { readonly listening: EventName; readonly error: EventName };
  listeningFields(spec: Spec): Readonly<Record<string, unknown>>;
  /** One process: the service's listeners for the specs. */
  local(specs: readonly Spec[], ctx: ServiceContext): Promise<LocalService>;
  /** As root: the parent's side of the child. */
  parent?(ctx: ServiceContext, post: (m: object) => void): ParentSide<Other>;
}

/** A service and its kinds with the spec type erased, so the table can hold them all. */
export interface Service {
  readonly name: ServiceName;
  readonly kinds: readonly KindDef<HostPort>[];
  start(specs: readonly HostPort[], ctx: ServiceContext): Promise<RunningService>;
}

export interface RunningService {
  readonly name: ServiceName;
  readonly listeners: readonly BoundListener[];
  readonly pid: number | undefined;
  reload(): Readonly<Record<string, unknown>>;
  stop(graceMs: number): Promise<void>;
}

function service<Spec extends HostPort, Other extends { readonly type: string }>(
  def: ServiceDef<Spec, Other>,
): Service {
  return {
    name: def.name,
    kinds: def.kinds,
    // the specs handed back are the ones this service's kinds parsed
    start: (specs, ctx) => startService(def, specs as readonly Spec[], ctx),
  };
}

/**
 * The table. A new kind of an existing service is one more KindDef in its row (and its handling in that service's
 * listener); a new service is one more row: a ServiceDef, its server module and its child script.
 */
const SERVICES: readonly Service[] = [
  service(SMTP_SERVICE),
  service(POP3_SERVICE),
  service(METRICS_SERVICE),
  // issue 19: the web admin
  service(WEB_SERVICE),
  service(ODMR_SERVICE),
];

const kindIndex = (): Map<string, { readonly service: Service; readonly def: KindDef<HostPort> }> =>
  new Map(SERVICES.flatMap((s) => s.kinds.map((k) => [k.kind, { service: s, def: k }] as const)));

/** Every listener kind of the table, in its order. */
export function listenerKinds(): string[] {
  return SERVICES.flatMap((s) => s.kinds.map((k) => k.kind));
}

/** The listener kinds one service serves (`pop3d`: `pop3`), none for a process that has no listeners (`sendd`). */
export function serviceKinds(name: string): string[] {
  return SERVICES.filter((s) => s.name === name).flatMap((s) => s.kinds.map((k) => k.kind));
}

/** Every kind, for messages: `smtp, submission or pop3`. */
function kindList(): string {
  const all = listenerKinds();
  return all.length > 1 ? `${all.slice(0, -1).join(', ')} or ${all.at(-1) ?? ''}` : all.join('');
}

/** One listener to open: its kind, the service serving it, the parsed spec. */
export interface PlannedListener {
  readonly kind: string;
  readonly service: ServiceName;
  readonly spec: HostPort;
  /** From the embedded default (there is no control/listeners and no flag replaced the kind). */
  readonly embedded?: boolean;
}

/** Parses control/listeners text: each line's kind looked up in the table and its options checked by the kind. */
export function parseListeners(text: string): { listeners: PlannedListener[]; errors: ListenerError[] } {
  const kinds = kindIndex();
  const { lines, errors } = splitListeners(text);
  const listeners: PlannedListener[] = [];
  for (const l of lines) {
    const k = kinds.get(l.kind);
    if (!k) {
      errors.push({ line: l.line, text: l.text, reason: `unknown kind "${l.kind}" (${kindList()})` });
      continue;
    }
    const spec = k.def.parse({ host: l.host, port: l.port }, l.words);
    if (typeof spec === 'string') errors.push({ line: l.line, text: l.text, reason: spec });
    else listeners.push({ kind: l.kind, service: k.service.name, spec });
  }
  errors.sort((a, b) => a.line - b.line);
  return { listeners, errors };
}

/** A command-line flag that replaces every line of `replaces` (`--pop3s HOST:PORT` is `pop3 tls=implicit`). */
export interface ListenerOverride {
  readonly flag: string;
  readonly value: string;
  readonly kind: string;
  readonly words?: readonly string[];
}

export interface ListenerPlan {
  readonly listeners: readonly PlannedListener[];
}

/** The listeners to open: control/listeners (or the default), each kind a flag names replaced by the flags' values. */
export function listenerPlan(control: Control, overrides: readonly ListenerOverride[] = []): ListenerPlan {
  const text = control.raw('listeners');
  const parsed = parseListeners(text ?? DEFAULT_LISTENERS);
  const bad = parsed.errors[0];
  if (bad)
    throw new QuailError(
      `${control.path('listeners')} line ${bad.line}: "${bad.text}": ${bad.reason}; fix the line (see docs/LISTENERS.md)`,
      false,
    );
  const kinds = kindIndex();
  const replaced = new Set(overrides.map((o) => o.kind));
  const given: PlannedListener[] = [];
  for (const o of overrides) {
    if (o.value === 'none') continue;
    const hp = parseHostPort(o.value);
    const k = kinds.get(o.kind);
    if (typeof hp === 'string') throw new QuailError(`${o.flag} ${hp}`, false);
    const spec = k?.def.parse(hp, o.words ?? []) ?? `unknown kind ${o.kind}`;
    if (typeof spec === 'string') throw new QuailError(`${o.flag} ${o.value}: ${spec}`, false);
    given.push({ kind: o.kind, service: k?.service.name ?? 'smtpd', spec });
  }
  // A flag's listener is configured: a port that cannot be bound is an error, even where the default's would not be.
  const kept = parsed.listeners.filter((l) => !replaced.has(l.kind));
  return { listeners: [...(text === null ? kept.map((l) => ({ ...l, embedded: true })) : kept), ...given] };
}

/** Starts every service of the plan, in table order; one that fails stops those already started. */
export async function startServices(
  plan: ListenerPlan,
  ctxFor: (name: ServiceName) => Omit<ServiceContext, 'embedded'>,
): Promise<RunningService[]> {
  const running: RunningService[] = [];
  for (const s of SERVICES) {
    const mine = plan.listeners.filter((l) => l.service === s.name);
    if (mine.length === 0) continue;
    const embedded = mine.every((l) => l.embedded === true);
    try {
      running.push(
        await s.start(
          mine.map((l) => l.spec),
          { ...ctxFor(s.name), embedded },
        ),
      );
    } catch (err) {
      await Promise.all(running.map((r) => r.stop(0)));
      throw err;
    }
  }
  return running;
}

/** The specs that can be opened: one needing servercert.pem without it is an error, or skipped in the default. */
function usable<Spec extends HostPort>(
  def: ServiceDef<Spec, never>,
  specs: readonly Spec[],
  ctx: ServiceContext,
): Spec[] {
  const need = def.needsCert;
  if (!need) return [...specs];
  const pem = ctx.control.raw('servercert.pem');
  const cert = pem !== null && pem.includes('PRIVATE KEY');
  return specs.filter((s) => {
    if (cert || !need.test(s)) return true;
    const what = `${s.host}:${s.port} ${def.kindOf(s)}`;
    if (!(ctx.embedded && def.optionalInDefault))
      throw new QuailError(
        `${what} tls=implicit needs ${ctx.control.path('servercert.pem')} (key and certificate); quail init makes one`,
        false,
      );
    ctx.log.event(need.warning, {
      listener: `${s.host}:${s.port}`,
      error: `no servercert.pem: the implicit-TLS ${def.what} port of the default is not opened`,
    });
    return false;
  });
}

/**
 * One service: as root its listeners are bound here and served by its child (privchild.ts) as the account;
 * otherwise bound and served in this process. A listener that cannot be bound fails the start (temporary), unless
 * it is of the embedded default and the service says so (then it is logged and skipped).
 */
async function startService<Spec extends HostPort, Other extends { readonly type: string }>(
  def: ServiceDef<Spec, Other>,
  all: readonly Spec[],
  ctx: ServiceContext,
): Promise<RunningService> {
  const specs = usable(def as ServiceDef<Spec, never>, all, ctx);
  const optional = ctx.embedded && def.optionalInDefault;
  const bound = (s: Spec): BoundListener => ({ host: s.host, port: s.port, kind: def.kindOf(s) });
  if (specs.length === 0)
    return { name: def.name, listeners: [], pid: undefined, reload: () => ({}), stop: () => Promise.resolve() };
  if (ctx.account) {
    const account = ctx.account;
    // the service's own answers to its child go to whichever child serves now
    const post = (m: object): void => child.post(m);
    const side = def.parent?.(ctx, post);
    const child: ServiceChild<Spec, Other> = new ServiceChild<Spec, Other>({
      name: def.name,
      what: def.what,
      script: def.script,
      root: ctx.root,
      account,
      log: side?.log ?? ctx.log,
      specs,
      optional,
      busyReply: (s) => def.busyReply(s),
      ...(def.clientSpeaksFirst ? { clientSpeaksFirst: def.clientSpeaksFirst } : {}),
      instances: def.instances?.(ctx) ?? 1,
      ...(def.admission ? { admission: def.admission(ctx) } : {}),
      ...(def.directAccept ? { directAccept: def.directAccept } : {}),
      ...(side?.onMessage ? { onMessage: side.onMessage } : {}),
      ...(def.checksPasswords === true ? { logins: ctx.logins } : {}),
      onServing: ctx.onServing,
      onCrash: ctx.onCrash,
    });
    let served: readonly Spec[];
    try {
      served = await child.start();
    } catch (err) {
      await side?.close();
      throw err;
    }
    for (const b of served) ctx.log.event(def.events.listening, { ...def.listeningFields(b), user: account.name });
    return {
      name: def.name,
      listeners: served.map(bound),
      get pid() {
        return child.pid;
      },
      reload: () => {
        child.reload();
        return {};
      },
      stop: async (graceMs) => {
        await child.stop(graceMs);
        await side?.close();
      },
    };
  }
  const local = await def.local(specs, ctx);
  const live: LocalListener[] = [];
  const out: BoundListener[] = [];
  for (const [i, l] of local.listeners.entries()) {
    const spec = specs[i] as Spec;
    try {
      const a = await l.listen();
      live.push(l);
      const b = { ...spec, port: a.port };
      out.push(bound(b));
      ctx.log.event(def.events.listening, { ...def.listeningFields(b), address: a.address, ...local.listening?.() });
    } catch (err) {
      if (optional) {
        ctx.log.event(def.events.error, {
          listener: `${spec.host}:${spec.port}`,
          error: `not opened: ${errText(err)}`,
        });
        continue;
      }
      await Promise.all(live.map((x) => x.close(0)));
      await local.close();
      throw new QuailError(
        `cannot listen on ${spec.host}:${spec.port} (${def.kindOf(spec)}): ${errText(err)}; change control/listeners or the command-line flags`,
        true,
      );
    }
  }
  return {
    name: def.name,
    listeners: out,
    pid: undefined,
    reload: () => local.reload() ?? {},
    stop: async (graceMs) => {
      await Promise.all(live.map((l) => l.close(graceMs)));
      await local.close();
    },
  };
}
