// The directory bench's measurements shared by both backends: random mailbox lookups and the administrative changes.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Control } from '../src/control/index.js';
import {
  createDomain,
  createMailbox,
  openDirectory,
  removeDomain,
  type DeliveryAccount,
  type Directory,
} from '../src/directory/index.js';
import { domainOf, localOf, PER_DOMAIN, type Built } from './directory-load.js';
import type { BenchRow } from './types.js';

const ADDS = 5;

export const secs = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;
export const count = (n: number): string => n.toLocaleString('en-US');
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** A small deterministic generator (xorshift32): the same picks on every run. */
export function picker(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/** Runs op until max operations or the time budget; returns operations per second. */
export async function rate(
  max: number,
  budgetMs: number,
  op: (i: number) => Promise<void>,
): Promise<{ done: number; perSecond: number }> {
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + budgetMs;
  let done = 0;
  while (done < max && (done % 256 !== 0 || Date.now() < deadline)) await op(done++);
  return { done, perSecond: done / secs(t0) };
}

export interface LookupCase {
  readonly done: number;
  readonly perSecond: number;
  /** Different mailboxes asked for (each found, or counted in misses). */
  readonly distinct: number;
}

export interface Lookups {
  /** getMailbox alone. */
  readonly get: LookupCase;
  /** resolveDomain + getMailbox + getAlias: the single calls vdeliver and the RCPT check made before lookupAddress. */
  readonly rcpt: LookupCase;
  /** lookupAddress: what vdeliver and the RCPT check ask now (one statement). */
  readonly address: LookupCase;
  /** Existing mailboxes not found (or found with an alias): 0 unless the directory is wrong. */
  readonly misses: number;
}

/** Random existing mailboxes (the same sequence on every run), one lookup at a time, until max or the budget per case. */
export async function measureLookups(dir: Directory, b: Built, max: number, budgetMs: number): Promise<Lookups> {
  let misses = 0;
  const pick = picker(12345); // one sequence: the second case asks for other mailboxes than the first
  const one = async (fn: (d: string, l: string) => Promise<boolean>): Promise<LookupCase> => {
    const seen = new Set<number>();
    const r = await rate(max, budgetMs, async () => {
      const i = pick(b.mailboxes);
      seen.add(i);
      if (!(await fn(domainOf(Math.floor(i / PER_DOMAIN)), localOf(i % PER_DOMAIN)))) misses++;
    });
    return { ...r, distinct: seen.size };
  };
  const get = await one(async (d, l) => (await dir.getMailbox(d, l)) !== null);
  const rcpt = await one(async (d, l) => {
    const dom = await dir.resolveDomain(d);
    return dom !== null && (await dir.getMailbox(dom.name, l)) !== null && (await dir.getAlias(dom.name, l)) === null;
  });
  const address = await one(async (d, l) => {
    const r = await dir.lookupAddress(d, l);
    return r !== null && r.alias === null && r.mailbox?.local === l;
  });
  return { get, rcpt, address, misses };
}

/** The two lookup rows; `how` says through what (read-only SQLite, a pg pool...). */
export function lookupRows(l: Lookups, label: string, how: string): BenchRow[] {
  return [
    {
      name: `getMailbox, random mailbox, ${label}`,
      value: l.get.perSecond,
      unit: 'lookups/s',
      note: `${count(l.get.done)} lookups (${count(l.get.distinct)} different mailboxes), one at a time, ${how}`,
    },
    {
      name: `resolveDomain + getMailbox + getAlias (single calls), ${label}`,
      value: l.rcpt.perSecond,
      unit: 'lookups/s',
      note: `${count(l.rcpt.done)} addresses; what vdeliver and the RCPT check asked until session 16 (four queries)`,
    },
    {
      name: `lookupAddress (vdeliver / RCPT check), ${label}`,
      value: l.address.perSecond,
      unit: 'lookups/s',
      note: `${count(l.address.done)} addresses; one query: domain, alias and mailbox at once`,
    },
  ];
}

/**
 * The real createDomain (row + every file sync) ADDS times, then createMailbox and removeDomain, in b's root;
 * the directory is b's SQLite file, or `url` (PostgreSQL).
 */
export async function measureChanges(
  b: Built,
  account: DeliveryAccount,
  label: string,
  url?: string,
): Promise<BenchRow[]> {
  const dir = await openDirectory({ root: b.root, ...(url !== undefined ? { url } : {}) });
  const c = { root: b.root, dir };
  try {
    const add: number[] = [];
    const rm: number[] = [];
    for (let k = 0; k < ADDS; k++) {
      const t0 = process.hrtime.bigint();
      await createDomain(c, { name: `new${k}.bench.test`, account });
      add.push(secs(t0) * 1000);
    }
    const more = new Control(b.root).list('morercpthosts').value?.length ?? 0;
    const size = (p: string): string => `${(statSync(join(b.root, p)).size / 1e6).toFixed(1)} MB`;
    const files = `virtualdomains ${size('control/virtualdomains')}, users/assign ${size('users/assign')}, users/cdb ${size('users/cdb')}, morercpthosts ${count(more)} entries`;
    const box: number[] = [];
    for (let k = 0; k < ADDS; k++) {
      const t0 = process.hrtime.bigint();
      await createMailbox(c, { address: `box${k}@new0.bench.test`, password: null });
      box.push(secs(t0) * 1000);
    }
    const t1 = process.hrtime.bigint();
    await createMailbox(c, { address: `pw@new0.bench.test`, password: 'secret' });
    const withPw = secs(t1) * 1000;
    for (let k = ADDS - 1; k >= 1; k--) {
      const t0 = process.hrtime.bigint();
      await removeDomain(c, `new${k}.bench.test`, true);
      rm.push(secs(t0) * 1000);
    }
    const spread = (xs: number[]): string =>
      `median of ${xs.length}; min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)} ms`;
    return [
      {
        name: `createDomain (row + rcpthosts/morercpthosts(.cdb), virtualdomains, users/assign+cdb, .qmail-default), ${label}`,
        value: median(add),
        unit: 'ms',
        note: `${spread(add)}; ${files}`,
      },
      { name: `removeDomain (all files), ${label}`, value: median(rm), unit: 'ms', note: spread(rm) },
      {
        name: `createMailbox, no password (row + Maildir), ${label}`,
        value: median(box),
        unit: 'ms',
        note: spread(box),
      },
      {
        name: `createMailbox with a password, ${label}`,
        value: withPw,
        unit: 'ms',
        note: 'one; scrypt ln=15 (32 MiB) is most of it, by design',
      },
    ];
  } finally {
    await dir.close();
  }
}
