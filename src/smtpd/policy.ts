// A session's acceptance rules, read once at connect from control/ and the session environment (B.2-B.9).
import { asciiLower, errText } from '../core/index.js';
import { CdbReader } from '../cdb/index.js';
import { parseList, type Control } from '../control/index.js';
import { applyLocalIpHost } from './address.js';

/** The tcpserver-style environment of one session: TCPREMOTEIP, TCPLOCALHOST, RELAYCLIENT, DATABYTES... */
export type SessionEnv = Readonly<Record<string, string | undefined>>;

export interface Policy {
  /** Text after 220/250/221 (smtpgreeting, else me). */
  readonly greeting: string;
  /** 0 = unlimited (DATABYTES env overrides control/databytes). */
  readonly databytes: number;
  readonly timeoutSeconds: number;
  /** RELAYCLIENT: set (even '') = every recipient accepted, with this value appended. */
  readonly relayClient: string | undefined;
  /** B.2 rewrite of `[ip]` literals naming this host. */
  readonly localIpHost: (address: string) => string;
  /**
   * B.3 without RELAYCLIENT. Throws when morercpthosts.cdb cannot be read (damaged, I/O error): qmail-smtpd's
   * `421 unable to read controls` at RCPT.
   */
  readonly rcptAllowed: (address: string) => boolean;
  /** QUAIL_BARECR="keep": a lone CR in DATA is kept (qmail) instead of refusing the message (default). */
  readonly keepBareCr: boolean;
  /**
   * QUAIL_LOOSE="1": MAIL/RCPT arguments are read as qmail-smtpd reads them (B.1: no <> needed, unknown
   * parameters ignored, a second MAIL replaces the first). Default: RFC 5321 4.1.2 syntax, known parameters only,
   * no MAIL inside a transaction (strict.ts).
   */
  readonly loose: boolean;
  /**
   * QUAIL_CLEARAUTH="1": AUTH is offered and accepted without TLS for this client. Default: only after STARTTLS,
   * from any address (loopback included: a proxy or tunnel makes a far client look local).
   */
  readonly clearAuth: boolean;
  /** QUAIL_AUTH (listener `auth=`): `required` = MAIL needs AUTH (or RELAYCLIENT), `off` = no AUTH; default offered. */
  readonly auth: 'required' | 'offered' | 'off';
  /** QUAIL_TLS="required" (listener `tls=required`): MAIL only after STARTTLS. */
  readonly tlsRequired: boolean;
  /** qmail's tarpit patch: past TARPITCOUNT recipients (0 = never) each RCPT reply waits TARPITDELAY seconds. */
  readonly tarpitCount: number;
  readonly tarpitDelay: number;
  /** control/defaultdomain, only when the file exists (vpopmail's meaning): an AUTH login without @domain is user@it. */
  readonly defaultDomain: string | undefined;
  /** B.5. */
  readonly badMailFrom: (address: string) => boolean;
  /** Closes what the policy holds open (morercpthosts.cdb); the session calls it when it ends. Idempotent. */
  readonly close: () => void;
}

export type PolicyResult =
  { readonly ok: true; readonly policy: Policy } | { readonly ok: false; readonly reason: string };

/** DATABYTES and similar env numbers: leading decimal digits, like qmail's scan_ulong. */
export function envNumber(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^[0-9]+/.exec(v);
  return m ? Number(m[0]) : 0;
}

/** Candidate keys for a recipient domain: the domain, then each suffix starting at a '.', longest first. */
export function domainCandidates(domain: string): string[] {
  const d = asciiLower(domain);
  const out = [d];
  for (let i = 1; i < d.length; i++) if (d[i] === '.') out.push(d.slice(i));
  return d === '' ? [] : out;
}

/** The last rcpthosts text and its set: a file unchanged between sessions is not split and lowercased again. */
let rcptKept: { readonly text: string; readonly set: ReadonlySet<string> } | undefined;

/** control/rcpthosts as a set of lowercased names; null when the file is missing. */
function rcptHostSet(control: Control): ReadonlySet<string> | null {
  const text = control.raw('rcpthosts');
  if (text === null) return null;
  if (rcptKept?.text !== text) {
    const list = control.list('rcpthosts').value ?? [];
    rcptKept = { text, set: new Set(list.map(asciiLower)) };
  }
  return rcptKept.set;
}

/**
 * Reads every control file the session needs. Any unreadable file (or neither smtpgreeting nor me) is
 * qmail's `421 unable to read controls (#4.3.0)`: the caller refuses the session, never guesses.
 * morercpthosts.cdb is opened (not read) here and kept open for the session, as qmail-smtpd's rcpthosts_init
 * does: each RCPT check reads a slot and a record, so a session costs the same at 100 domains and at 100,000, and
 * the session keeps the file it opened even when newmrh installs a new one. Only with rcpthosts present, as in
 * qmail (without rcpthosts every domain is accepted and morercpthosts.cdb is never consulted).
 */
export function loadPolicy(control: Control, env: SessionEnv, isLocalIp: (ip: string) => boolean): PolicyResult {
  try {
    const greeting = control.single('smtpgreeting').value;
    if (greeting === null) return { ok: false, reason: 'neither control/smtpgreeting nor control/me exists' };
    // QUAIL_RCPTHOSTS="none" (listener `rcpthosts=none`): as if rcpthosts were empty — only RELAYCLIENT or AUTH
    // may give recipients (seed 003's submission instance); no other domain is accepted, morercpthosts not read.
    // QUAIL_RCPTHOSTS="FILE" (listener `rcpthosts=FILE`): that file of control/ instead, without morercpthosts.cdb;
    // a listener naming a file that is missing refuses the session (421) rather than accept every domain.
    const own = env['QUAIL_RCPTHOSTS'];
    const ownFile = own !== undefined && own !== '' && own !== 'none' ? own : undefined;
    let rcptSet: ReadonlySet<string> | null;
    if (own === 'none') rcptSet = new Set<string>();
    else if (ownFile !== undefined) {
      const text = control.named(ownFile);
      if (text === null) return { ok: false, reason: `control/${ownFile} (the listener's rcpthosts=) does not exist` };
      rcptSet = new Set(parseList(text).map(asciiLower));
    } else rcptSet = rcptHostSet(control);
    const bmf = new Set((control.list('badmailfrom').value ?? []).map(asciiLower));
    const envBytes = envNumber(env['DATABYTES']);
    const databytes = envBytes ?? control.number('databytes').value;
    const timeoutSeconds = Math.max(1, control.number('timeoutsmtpd').value); // qmail-smtpd: 0 or less is 1
    const liphost = control.single('localiphost').value;
    const dd = control.single('defaultdomain');
    const defaultDomain = dd.source === 'file' && dd.value !== null && dd.value !== '' ? dd.value : undefined;
    // Opened last: nothing after it can fail, so the descriptor always reaches the policy that closes it.
    const fd = rcptSet === null || own === 'none' || ownFile !== undefined ? null : control.open('morercpthosts.cdb');
    const mrh = fd === null ? null : CdbReader.fromFd(fd);
    return {
      ok: true,
      policy: {
        greeting,
        databytes,
        timeoutSeconds,
        relayClient: env['RELAYCLIENT'],
        keepBareCr: env['QUAIL_BARECR'] === 'keep',
        loose: env['QUAIL_LOOSE'] === '1',
        clearAuth: env['QUAIL_CLEARAUTH'] === '1',
        auth: env['QUAIL_AUTH'] === 'required' ? 'required' : env['QUAIL_AUTH'] === 'off' ? 'off' : 'offered',
        tlsRequired: env['QUAIL_TLS'] === 'required',
        tarpitCount: envNumber(env['TARPITCOUNT']) ?? 0,
        tarpitDelay: envNumber(env['TARPITDELAY']) ?? 0,
        defaultDomain,
        localIpHost: (a) => (liphost === null ? a : applyLocalIpHost(a, liphost, isLocalIp)),
        rcptAllowed: (address) => {
          if (rcptSet === null) return true; // no rcpthosts: accept all [smtp-007]
          const at = address.lastIndexOf('@');
          if (at < 0) return true; // no '@': always accepted [smtp-008]
          const cands = domainCandidates(address.slice(at + 1));
          if (cands.some((c) => rcptSet.has(c))) return true;
          return mrh !== null && cands.some((c) => mrh.has(c));
        },
        badMailFrom: (address) => {
          if (bmf.size === 0) return false;
          const a = asciiLower(address);
          if (bmf.has(a)) return true;
          const at = a.lastIndexOf('@');
          return at >= 0 && bmf.has(a.slice(at));
        },
        close: () => mrh?.close(),
      },
    };
  } catch (err) {
    return { ok: false, reason: errText(err) };
  }
}
