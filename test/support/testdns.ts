// Test helper: a minimal authoritative DNS server over UDP (RFC 1035) answering MX, A, AAAA and TXT from a table.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

/** What the server knows about one name (lower case, no trailing dot). */
export interface DnsName {
  readonly mx?: ReadonlyArray<{ readonly pref: number; readonly exchange: string }>;
  readonly a?: readonly string[];
  readonly aaaa?: readonly string[];
  /** TXT records (SPF, DKIM keys, DMARC), each split into 255-byte strings on the wire. */
  readonly txt?: readonly string[];
  /** Answer SERVFAIL for every query of this name (a broken authoritative server). */
  readonly servfail?: boolean;
}

const TYPE_A = 1;
const TYPE_MX = 15;
const TYPE_AAAA = 28;
const TYPE_TXT = 16;

/** One TXT record's RDATA: the text as character-strings of at most 255 bytes (RFC 1035 3.3.14). */
function txtRdata(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length || i === 0; i += 255) {
    const chunk = bytes.subarray(i, i + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
  }
  return Buffer.concat(parts);
}

function encodeName(name: string): Buffer {
  const labels = name === '' || name === '.' ? [] : name.replace(/\.$/, '').split('.');
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])),
    Buffer.from([0]),
  ]);
}

function ipv6Bytes(ip: string): Buffer {
  const [head = '', tail = ''] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function rr(type: number, rdata: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(60, 6);
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}

/** The answer to one query packet, or null when it is not a query we can read. */
function answer(zone: ReadonlyMap<string, DnsName>, q: Buffer): Buffer | null {
  if (q.length < 17) return null;
  let off = 12;
  const labels: string[] = [];
  for (;;) {
    const len = q[off];
    if (len === undefined || len > 63) return null;
    off++;
    if (len === 0) break;
    labels.push(q.subarray(off, off + len).toString('ascii'));
    off += len;
  }
  if (off + 4 > q.length) return null;
  const qtype = q.readUInt16BE(off);
  const question = q.subarray(12, off + 4);
  const entry = zone.get(labels.join('.').toLowerCase());
  const answers: Buffer[] = [];
  let rcode = 0;
  if (entry === undefined)
    rcode = 3; // NXDOMAIN
  else if (entry.servfail) rcode = 2;
  else if (qtype === TYPE_MX) {
    for (const m of entry.mx ?? []) {
      const pref = Buffer.alloc(2);
      pref.writeUInt16BE(m.pref);
      answers.push(rr(TYPE_MX, Buffer.concat([pref, encodeName(m.exchange)])));
    }
  } else if (qtype === TYPE_A) {
    for (const ip of entry.a ?? []) if (isIPv4(ip)) answers.push(rr(TYPE_A, Buffer.from(ip.split('.').map(Number))));
  } else if (qtype === TYPE_TXT) {
    for (const t of entry.txt ?? []) answers.push(rr(TYPE_TXT, txtRdata(t)));
  } else if (qtype === TYPE_AAAA) {
    for (const ip of entry.aaaa ?? []) if (isIPv6(ip)) answers.push(rr(TYPE_AAAA, ipv6Bytes(ip)));
  }
  const head = Buffer.alloc(12);
  q.copy(head, 0, 0, 2); // id
  head.writeUInt16BE(0x8400 | ((q.readUInt16BE(2) & 0x0100) !== 0 ? 0x0100 : 0) | 0x0080 | rcode, 2); // QR AA RD RA
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answers.length, 6);
  return Buffer.concat([head, question, ...answers]);
}

/** Starts the server on 127.0.0.1 (a free port); `zone` may be changed by the test while it runs. */
export async function startDns(
  zone: Map<string, DnsName>,
): Promise<{ port: number; queries: string[]; close: () => Promise<void> }> {
  const sock: Socket = createSocket('udp4');
  const queries: string[] = [];
  sock.on('message', (msg, rinfo) => {
    const out = answer(zone, msg);
    queries.push(msg.subarray(13, Math.max(13, msg.length - 5)).toString('latin1'));
    if (out !== null) sock.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  sock.unref();
  return {
    port: sock.address().port,
    queries,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}
