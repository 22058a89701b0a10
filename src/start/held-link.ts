// ETRN for smtpd over src/held: which held domain a node names, who may ask, how often; the push is a wake-up.
import { lookup } from 'node:dns/promises';
import { statSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { join } from 'node:path';
import { Control } from '../control/index.js';
import { findHeld, listHeld, parseHostPort, waiting, type HeldDomain } from '../held/index.js';
import { errText } from '../core/index.js';
import type { AutoTurnHook, EtrnAnswer, EtrnNode, EtrnService } from '../smtpd/index.js';

/** One accepted ETRN per held domain in this many seconds; more are answered 458 (RFC 1985 section 5). */
const MIN_GAP_SECONDS = 30;

export class HeldEtrn implements EtrnService {
  private readonly lastAsked = new Map<string, number>();

  constructor(
    private readonly root: string,
    /** Starts the push: `flush <domain>` to the send process (its HeldPusher and scheduler both act on it). */
    private readonly trigger: (domain: string) => void,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
    /** An accepted ETRN, for the other SMTP processes (their heard()): the limit holds whichever process is asked. */
    private readonly tell: (domain: string, t: number) => void = () => undefined,
  ) {}

  /** Another SMTP process accepted an ETRN for `domain` at `t`. */
  heard(domain: string, t: number): void {
    if (t > (this.lastAsked.get(domain) ?? -Infinity)) this.lastAsked.set(domain, t);
  }

  async request(node: EtrnNode, client: { readonly ip: string; readonly allowed: boolean }): Promise<EtrnAnswer> {
    if (node.kind === 'queue')
      return { kind: 'refused', why: 'ETRN #queue is not served here (quail queue flush does that); give the domain' };
    const control = new Control(this.root);
    let held: HeldDomain[] =
      node.kind === 'domain'
        ? [findHeld(this.root, control, node.name)].flatMap((h) => (h ? [h] : []))
        : listHeld(this.root, control).filter((h) => h.domain === node.name || h.domain.endsWith(`.${node.name}`));
    if (held.length === 0) return { kind: 'refused', why: 'mail for it is not held here' };
    if (held.every((h) => h.settings.etrn === false))
      return { kind: 'refused', why: 'ETRN is not enabled for it (quail held add --etrn)' };
    held = held.filter((h) => h.settings.etrn !== false);
    const mine: HeldDomain[] = [];
    for (const h of held) if (client.allowed || (await isRelayhost(h, client.ip))) mine.push(h);
    if (mine.length === 0)
      return { kind: 'refused', why: `${client.ip} is not its mail host; ask from that address or set QUAIL_ETRN` };
    const t = this.now();
    const soon = mine.filter((h) => t - (this.lastAsked.get(h.domain) ?? -Infinity) < MIN_GAP_SECONDS);
    if (soon.length === mine.length) {
      const wait = Math.max(...soon.map((h) => MIN_GAP_SECONDS - (t - (this.lastAsked.get(h.domain) ?? t))));
      return { kind: 'unable', why: `asked less than ${MIN_GAP_SECONDS} s ago, try again in ${wait} s` };
    }
    let count = 0;
    let known = true;
    for (const h of mine) {
      try {
        count += await waiting(h.maildir);
      } catch {
        known = false;
      }
    }
    if (known && count === 0) return { kind: 'none' };
    for (const h of mine) {
      this.lastAsked.set(h.domain, t);
      this.tell(h.domain, t);
      this.trigger(h.domain);
    }
    return known ? { kind: 'pending', count } : { kind: 'started' };
  }
}

interface AutoTurnNet {
  readonly domain: string;
  readonly maildir: string;
  readonly list: BlockList;
}

interface AutoTurnTable {
  /** When the files were last looked at. */
  readonly at: number;
  /** What they looked like then (sizes, mtimes and inodes): unchanged means the table still holds; undefined: read again. */
  readonly stamp: string | undefined;
  /** The files the stamp covers: virtualdomains and users/cdb, then every held home's HELD. */
  readonly control: readonly string[];
  readonly held: readonly string[];
  /** Every domain's networks in one list: an address in none of them costs one check. */
  readonly all: BlockList;
  readonly nets: readonly AutoTurnNet[];
}

/** How long the table of AutoTURN networks is kept before its files are looked at again (a few stats). */
const AUTOTURN_TABLE_SECONDS = 5;

/**
 * What `files` look like (inode, size, mtime each), or undefined when one changed in the last 2 s: a change within
 * the same clock tick as the read would otherwise go unseen.
 */
function stampOf(files: readonly string[]): string | undefined {
  const recent = Date.now() - 2000;
  let fresh = false;
  const parts = files.map((f) => {
    try {
      const st = statSync(f);
      if (st.mtimeMs > recent) fresh = true;
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return '-';
    }
  });
  return fresh ? undefined : parts.join(' ');
}

/** Both stamps, or undefined when either is. */
const both = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined || b === undefined ? undefined : `${a}|${b}`;

/** `IP/BITS` (or a bare IP) added to `lists`; false when it is not a network (a hand-edited HELD). */
function addNet(net: string, lists: readonly BlockList[]): boolean {
  const [addr = '', bits] = net.split('/');
  const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
  if (isIP(addr) === 0) return false;
  try {
    for (const l of lists) l.addSubnet(addr, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type);
    return true;
  } catch {
    return false; // a prefix length out of range
  }
}

/**
 * AutoTURN: when a session on an `smtp` listener ends and its client's address is in a held domain's `autoturn`
 * networks (HELD, `quail held add --autoturn`), that domain's held mail is pushed — the same `flush <domain>`
 * wake-up as ETRN, so the same pusher, lock and rules; the push goes to the domain's host (RELAYHOST), the session
 * is only the sign that the customer is online. At most once per domain in MIN_GAP_SECONDS, and only with mail
 * waiting. Never throws and never delays the session: the work runs after it, errors are logged.
 */
export class HeldAutoTurn implements AutoTurnHook {
  private readonly lastPushed = new Map<string, number>();
  private table: AutoTurnTable | undefined;

  constructor(
    private readonly root: string,
    private readonly trigger: (domain: string) => void,
    private readonly log: (event: 'held.autoturn' | 'held.error', fields: Readonly<Record<string, unknown>>) => void,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
    /** A push asked for, for the other SMTP processes (their heard()): once per domain in the gap across them all. */
    private readonly tell: (domain: string, t: number) => void = () => undefined,
  ) {}

  /** Another SMTP process asked for `domain`'s push at `t`. */
  heard(domain: string, t: number): void {
    if (t > (this.lastPushed.get(domain) ?? -Infinity)) this.lastPushed.set(domain, t);
  }

  sessionEnded(ip: string): void {
    void this.check(ip).catch((err: unknown) => this.log('held.error', { error: `autoturn: ${errText(err)}` }));
  }

  /**
   * The held domains' AutoTURN networks. At most every AUTOTURN_TABLE_SECONDS the files they come from are stat'ed,
   * and read again (listHeld: every virtualdomains entry) only when one changed. A bad network in a hand-edited
   * HELD is skipped; control files that cannot be read give an empty table (a `held.error` every 5 s, not one per session).
   */
  private nets(): AutoTurnTable {
    const t = this.now();
    const old = this.table;
    if (old !== undefined && t - old.at < AUTOTURN_TABLE_SECONDS) return old;
    if (old?.stamp !== undefined && both(stampOf(old.control), stampOf(old.held)) === old.stamp)
      return (this.table = { ...old, at: t });
    const control = [join(this.root, 'control', 'virtualdomains'), join(this.root, 'users', 'cdb')];
    const held: string[] = [];
    const stamp0 = stampOf(control);
    const all = new BlockList();
    const nets: AutoTurnNet[] = [];
    let failed = false;
    try {
      for (const h of listHeld(this.root, new Control(this.root))) {
        held.push(join(h.home, 'HELD'));
        const list = new BlockList();
        let any = false;
        for (const net of h.settings.autoturn) any = addNet(net, [list, all]) || any;
        if (any) nets.push({ domain: h.domain, maildir: h.maildir, list });
      }
    } catch (err) {
      failed = true;
      this.log('held.error', { error: `autoturn: ${errText(err)}` });
    }
    // the stamp of the control files is the one from before the read: a change during it is seen next time
    const stamp = failed ? undefined : both(stamp0, stampOf(held));
    this.table = { at: t, stamp, control, held, all, nets };
    return this.table;
  }

  /** The work of sessionEnded: the domains whose push it asked for (none for an address in no held network). */
  async check(ip: string): Promise<string[]> {
    const pushed: string[] = [];
    const table = this.nets();
    // no held domain with AutoTURN networks (the usual case): nothing to match (BlockList.check builds an address
    // object per call, about 1% of the SMTP process's time per message, docs/PERFORMANCE.md ninth pass)
    if (table.nets.length === 0) return pushed;
    const plain = ip.replace(/^::ffff:(?=\d+\.)/, '');
    const family = isIP(plain);
    if (family === 0) return pushed;
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (!table.all.check(plain, type)) return pushed;
    for (const n of table.nets) {
      if (!n.list.check(plain, type)) continue;
      const t = this.now();
      const before = this.lastPushed.get(n.domain);
      if (before !== undefined && t - before < MIN_GAP_SECONDS) continue;
      // taken before the wait, so two sessions ending together ask once; given back when nothing waits
      this.lastPushed.set(n.domain, t);
      if ((await waiting(n.maildir)) === 0) {
        if (before === undefined) this.lastPushed.delete(n.domain);
        else this.lastPushed.set(n.domain, before);
        continue;
      }
      this.log('held.autoturn', { domain: n.domain, ip: plain });
      this.tell(n.domain, t);
      this.trigger(n.domain);
      pushed.push(n.domain);
    }
    return pushed;
  }
}

/** True when `ip` is one of the addresses of the domain's RELAYHOST (the customer asks for its own mail). */
async function isRelayhost(h: HeldDomain, ip: string): Promise<boolean> {
  const plain = ip.replace(/^::ffff:(?=\d+\.)/, '');
  let host: string;
  try {
    host = parseHostPort(h.relayhost).host;
  } catch {
    return false;
  }
  if (isIP(host) !== 0) return host === plain;
  try {
    return (await lookup(host, { all: true })).some((a) => a.address === plain);
  } catch {
    return false;
  }
}
