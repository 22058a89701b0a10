// The mailbox→office table every server keeps (run/offices.json): read from the shared directory, answered from here.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { asciiLower } from '../core/index.js';
import type { Directory } from '../directory/index.js';
import { badOffice, keepTrusted } from './trust.js';

export const TABLE_FORMAT = 'quail-offices 1';

/**
 * Where a recipient goes: the shape of src/scheduler's OfficePlace, written out here so offices does not import the
 * scheduler (start hands the router to it; the compiler checks there that the two agree).
 */
export type OfficePlace =
  | { readonly kind: 'here' }
  | {
      readonly kind: 'office';
      readonly office: string;
      readonly host: string;
      readonly port: number;
      readonly tls: string;
    }
  | { readonly kind: 'unknown'; readonly why: string };

export interface OfficeEntry {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly tls: string;
  /** The host's addresses (itself when an IP): mail from one of these came from that office. */
  readonly ips: readonly string[];
}

/** A copy of what the directory said at `loaded` (ms since the epoch). */
export interface OfficeTable {
  readonly format: typeof TABLE_FORMAT;
  readonly loaded: number;
  readonly offices: readonly OfficeEntry[];
  /** Every directory domain and alias domain → the domain's own name. */
  readonly domains: Readonly<Record<string, string>>;
  /** `local@domain` → the mailbox's office ('' is none: delivered wherever it arrives). */
  readonly homes: Readonly<Record<string, string>>;
}

async function addresses(host: string): Promise<string[]> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(bare) !== 0) return [bare];
  try {
    return (await lookup(bare, { all: true })).map((a) => a.address);
  } catch {
    return []; // a name that does not resolve now: its mail is not recognised as inter-office until it does
  }
}

/**
 * Reads the whole table from the directory (throws when it cannot be reached: the caller keeps its old copy). An
 * office whose row fails the local checks (trust.ts: its name, host and port become the office channel's route and
 * its report, its TLS requirement a CA file read) is left out and said through `refused`: its mailboxes wait.
 */
export async function loadTable(
  dir: Directory,
  now: number = Date.now(),
  refused: (why: string) => void = () => undefined,
): Promise<OfficeTable> {
  const [all, domains, homes] = await Promise.all([dir.listOffices(), dir.listDomains(), dir.mailboxHomes()]);
  const offices = keepTrusted(all, (o) => `office ${JSON.stringify(o.name)}`, badOffice, refused);
  const d: Record<string, string> = {};
  for (const x of domains) for (const n of [x.name, ...x.aliases]) d[n] = x.name;
  const h: Record<string, string> = {};
  for (const m of homes) h[`${m.local}@${m.domain}`] = m.office;
  return {
    format: TABLE_FORMAT,
    loaded: now,
    offices: await Promise.all(
      offices.map(async (o) => ({
        name: o.name,
        host: o.host,
        port: o.port,
        tls: o.tls,
        ips: await addresses(o.host),
      })),
    ),
    domains: d,
    homes: h,
  };
}

/** A table read back from run/offices.json; null when it is not one. */
export function parseTable(text: string): OfficeTable | null {
  try {
    const t = JSON.parse(text) as Partial<OfficeTable> | null;
    if (t?.format !== TABLE_FORMAT || typeof t.loaded !== 'number' || !Array.isArray(t.offices)) return null;
    if (typeof t.domains !== 'object' || typeof t.homes !== 'object') return null;
    return t as OfficeTable;
  } catch {
    return null;
  }
}

/**
 * Where `address` goes for the server of office `self`: a mailbox (or `box-ext` of one, vdeliver's rule) of another
 * office → that office; its own, no office, aliases, unknown addresses and other domains → here (delivered or
 * bounced by the local rules); a mailbox of an office no longer in the table → unknown (it waits).
 */
export function placeOf(table: OfficeTable, self: string, address: string): OfficePlace {
  const at = address.lastIndexOf('@');
  if (at <= 0) return { kind: 'here' };
  const domain = table.domains[asciiLower(address.slice(at + 1))];
  if (domain === undefined) return { kind: 'here' };
  const local = asciiLower(address.slice(0, at));
  let office = table.homes[`${local}@${domain}`];
  const dash = local.indexOf('-');
  if (office === undefined && dash > 0) office = table.homes[`${local.slice(0, dash)}@${domain}`];
  if (office === undefined || office === '' || office === self) return { kind: 'here' };
  const o = table.offices.find((x) => x.name === office);
  // The name is a row's: quoted, so that no character of it starts a line of the deferral's report.
  if (!o) return { kind: 'unknown', why: `its office ${JSON.stringify(office)} is not in the offices table` };
  return { kind: 'office', office: o.name, host: o.host, port: o.port, tls: o.tls };
}

/** The other office a message came from: received over SMTP from one of that office's addresses. */
export function cameFromOf(table: OfficeTable, self: string, meta: Readonly<Record<string, string>>): string | null {
  if (meta['origin'] !== 'smtp') return null;
  const ip = meta['ip'];
  if (ip === undefined || ip === '') return null;
  const bare = ip.startsWith('::ffff:') ? ip.slice('::ffff:'.length) : ip;
  const o = table.offices.find((x) => x.name !== self && x.ips.includes(bare));
  return o ? o.name : null;
}
