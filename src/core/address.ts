// Envelope addresses split the qmail way: at the LAST '@'.

export interface SplitAddress {
  readonly local: string;
  readonly domain: string;
  /** true if the address contained an '@' at all. */
  readonly hasAt: boolean;
}

/** Splits at the last '@' (docs/QMAIL.md A.3: `joe@foo@local.test` has local part `joe@foo`). */
export function splitAddress(addr: string): SplitAddress {
  const at = addr.lastIndexOf('@');
  if (at < 0) return { local: addr, domain: '', hasAt: false };
  return { local: addr.slice(0, at), domain: addr.slice(at + 1), hasAt: true };
}

const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]*$/;

/**
 * qmail-remote's quoting of the local part (docs/QMAIL.md E.6), also used for RPLINE and bounce headers.
 * Addresses without '@' are returned as they are.
 */
export function quoteAddress(addr: string): string {
  const at = addr.lastIndexOf('@');
  if (at < 0) return addr;
  const local = addr.slice(0, at);
  return quoteLocal(local) + addr.slice(at);
}

export function quoteLocal(local: string): string {
  const needs =
    local.length === 0 || !ATOM.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..');
  if (!needs) return local;
  return '"' + local.replace(/["\\\r\n]/g, (c) => '\\' + c) + '"';
}
