// The customer's host as serialmail's tcpclient reaches it: HOST[:PORT] (default 25), a name resolved to A/AAAA.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { openSocket } from '../remote/index.js';
import type { Connector } from './push.js';

/** `host`, `host:port`, `[ip]`, `[ip]:port`, an IPv4 or IPv6 address. Throws a message naming the problem. */
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
  if (host === '' || (/[\s/:]/.test(host) && isIP(host) !== 6))
    throw new Error(`bad host ${JSON.stringify(spec)}: give HOST or HOST:PORT, e.g. mail.example.com:25`);
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
