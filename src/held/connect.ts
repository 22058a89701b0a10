// The customer's host as serialmail's tcpclient reaches it: HOST[:PORT] (default 25), a name resolved to A/AAAA.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { openSocket } from '../remote/index.js';
import type { Connector } from './push.js';

/**
 * A host name (RFC 1123 labels: letters and digits, hyphens only inside; `_` tolerated) or an IP address. Never
 * `-x`: a host becomes an SMTP target and an argument of commands (serialmail's, an office's export).
 */
function isHostName(host: string): boolean {
  if (isIP(host) !== 0) return true;
  return (
    host.length <= 253 && host.split('.').every((l) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l))
  );
}

/** `host`, `host:port`, `[ip]`, `[ip]:port` (brackets hold an IP address only), an IPv4 or IPv6 address. Throws a message naming the problem. */
export function parseHostPort(spec: string): { host: string; port: number } {
  let host = spec.trim();
  let port = 25;
  const bracket = /^\[([^\]]+)\](?::([0-9]+))?$/.exec(host);
  if (bracket) {
    host = bracket[1] ?? '';
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (isIP(host) !== 6) {
    const m = /^([^:]+):([0-9]+)$/.exec(host);
    if (m) {
      host = m[1] ?? '';
      port = Number(m[2]);
    }
  }
  if (bracket ? isIP(host) === 0 : !isHostName(host))
    throw new Error(
      `bad host ${JSON.stringify(spec)}: give HOST or HOST:PORT, HOST a host name (letters, digits, dots, hyphens inside) or an IP address, e.g. mail.example.com:25`,
    );
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`bad port in ${JSON.stringify(spec)}: give a number from 1 to 65535`);
  return { host, port };
}

/** Connects to every address of `host` in turn (A/AAAA through the system resolver, as tcpclient does). */
export function tcpConnector(host: string, port: number, connectMs: number, localAddress?: string): Connector {
  return async () => {
    let ips: string[];
    if (isIP(host) !== 0) ips = [host];
    else {
      try {
        ips = (await lookup(host, { all: true })).map((a) => a.address);
      } catch (err) {
        return { error: `cannot find ${host}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
      }
    }
    const why: string[] = [];
    for (const ip of ips) {
      const s = await openSocket(ip, port, connectMs, localAddress);
      if (typeof s !== 'string') return { socket: s, ip };
      why.push(`${ip}:${port} ${s === 'timeout' ? 'timed out' : 'refused the connection'}`);
    }
    return { error: `no connection to ${host}: ${why.join(', ') || 'no address'}` };
  };
}
