// Envelope addresses split the qmail way: at the LAST '@'; password logins as the directory reads them.
import { asciiLower } from './ascii.js';

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

/**
 * A password login, `user@domain` or vpopmail's `user%domain` (POP3 clients that cannot send '@'), as the user
 * directory reads it: split at the last '@' or '%', whichever comes later, both parts ASCII-lowercased
 * (`JOE@hunt.test`, `joe%HUNT.TEST` and `Joe%Hunt.Test` are one mailbox); null when either part is empty.
 */
export function splitLogin(login: string): [string, string] | null {
  const at = Math.max(login.lastIndexOf('@'), login.lastIndexOf('%'));
  if (at <= 0 || at === login.length - 1) return null;
  return [asciiLower(login.slice(0, at)), asciiLower(login.slice(at + 1))];
}

/**
 * The one name a login's failed attempts are counted under (src/throttle): `local@domain` of `splitLogin`, so
 * every spelling the directory takes for a mailbox is one name; anything else (a bare user) ASCII-lowercased.
 */
export function loginKey(login: string): string {
  const parts = splitLogin(login);
  return parts === null ? asciiLower(login) : `${parts[0]}@${parts[1]}`;
}
