// A `pop3` line of control/listeners → where to listen and the server options it sets (docs in README.md).

export interface Pop3ListenerSpec {
  readonly host: string;
  readonly port: number;
  readonly implicitTls: boolean;
  /**
   * Logins before TLS: `allow` every client, `loopback` clients from 127.0.0.0/8 and ::1 (an explicit choice: behind
   * a proxy or tunnel every client is loopback), `tls` only after TLS (the default) — control/tcp.pop3 can still
   * allow one client (QUAIL_CLEARAUTH="1").
   */
  readonly plaintext?: 'allow' | 'loopback' | 'tls';
  readonly idleTimeoutMs?: number;
  readonly maxPerIp?: number;
  /** `maxconn=N`: connections at once (default 200). */
  readonly maxConnections?: number;
  /** `stresstimeout=SECONDS` (0 = off): see Pop3ServerOptions.stressTimeoutMs. */
  readonly stressTimeoutMs?: number;
}

/**
 * `ADDRESS:PORT pop3 [tls=implicit] [plaintext=tls|allow|loopback] [idle=SECONDS] [maxperip=N] [maxconn=N]
 * [stresstimeout=SECONDS]`
 * → spec, or the reason.
 */
export function parsePop3Listener(line: string): Pop3ListenerSpec | string {
  const [addr = '', kind = '', ...opts] = line.trim().split(/\s+/);
  if (kind !== 'pop3') return `kind "${kind}" is not pop3`;
  const m = /^(?:\[([^\]]+)\]|([^:\s]*)):(\d{1,5})$/.exec(addr);
  if (!m || Number(m[3]) > 65535) return `"${addr}" is not ADDRESS:PORT`;
  return pop3ListenerOptions({ host: (m[1] ?? m[2]) || '0.0.0.0', port: Number(m[3]) }, opts);
}

/** The option words after `pop3` on a line whose address is already known → spec, or the reason. */
export function pop3ListenerOptions(
  where: { readonly host: string; readonly port: number },
  opts: readonly string[],
): Pop3ListenerSpec | string {
  const spec: { -readonly [K in keyof Pop3ListenerSpec]: Pop3ListenerSpec[K] } = { ...where, implicitTls: false };
  for (const o of opts) {
    const [key, value = ''] = o.split('=', 2);
    const n = /^\d{1,7}$/.test(value) ? Number(value) : NaN;
    if (key === 'tls' && (value === 'implicit' || value === 'stls')) spec.implicitTls = value === 'implicit';
    else if (key === 'plaintext' && (value === 'allow' || value === 'loopback' || value === 'tls'))
      spec.plaintext = value;
    else if (key === 'idle' && n > 0) spec.idleTimeoutMs = n * 1000;
    else if (key === 'maxperip' && n > 0) spec.maxPerIp = n;
    else if (key === 'maxconn' && n > 0) spec.maxConnections = n;
    else if (key === 'stresstimeout' && n >= 0) spec.stressTimeoutMs = n * 1000;
    else
      return `option "${o}" is not one of tls=implicit|stls, plaintext=tls|allow|loopback, idle=SECONDS, maxperip=N, maxconn=N, stresstimeout=SECONDS`;
  }
  return spec;
}
