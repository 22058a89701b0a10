// DKIM keys on disk: control/dkim/<domain>/<selector>.key (PEM, 0600, the signing account's) and the active selector.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  chownSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { asciiLower, QuailError } from '../core/index.js';

export type KeyAlgorithm = 'rsa-2048' | 'ed25519';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['rsa-2048', 'ed25519'];

/** A key ready to sign with: d=, s=, a= and the private key. */
export interface DkimKey {
  readonly domain: string;
  readonly selector: string;
  /** The DKIM a= value (RFC 6376 3.3, RFC 8463). */
  readonly algorithm: 'rsa-sha256' | 'ed25519-sha256';
  readonly privateKey: KeyObject;
}

/** Who owns the key files: the account that signs (control/quailuser as root); undefined = the invoking user. */
export interface KeyOwner {
  readonly uid: number;
  readonly gid: number;
}

/** RFC 6376 3.1: a selector is dot-separated labels; quail keeps to letters, digits and hyphens. */
const SELECTOR = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

function dkimDir(root: string): string {
  return join(root, 'control', 'dkim');
}

/** The domain in lower case, or a permanent error saying what a domain looks like. */
export function checkDomain(domain: string): string {
  const d = asciiLower(domain.replace(/\.$/, ''));
  if (!DOMAIN.test(d))
    throw new QuailError(`"${domain}" is not a domain name (letters, digits, hyphens, at least one dot)`, false);
  return d;
}

export function checkSelector(selector: string): string {
  const s = asciiLower(selector);
  if (!SELECTOR.test(s))
    throw new QuailError(`"${selector}" is not a DKIM selector (letters, digits, hyphens, dots; RFC 6376 3.1)`, false);
  return s;
}

/** The default selector for a new key: `q` and the date (q20261204), with -2, -3... when that one exists. */
export function newSelector(root: string, domain: string, now: Date): string {
  const base = `q${now.toISOString().slice(0, 10).replaceAll('-', '')}`;
  const have = new Set(listSelectors(root, domain));
  if (!have.has(base)) return base;
  for (let i = 2; ; i++) if (!have.has(`${base}-${i}`)) return `${base}-${i}`;
}

function keyPath(root: string, domain: string, selector: string): string {
  return join(dkimDir(root), domain, `${selector}.key`);
}

/** Writes `text` to `path` through a temporary file: mode 0600, owned by `owner`, fsynced, renamed. */
function writePrivate(path: string, text: string, owner: KeyOwner | undefined, exclusive: boolean): void {
  const tmp = `${path}.tmp${process.pid}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    if (owner) chownSync(tmp, owner.uid, owner.gid);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (!exclusive) return renameSync(tmp, path);
  // a selector names one key forever: link(2) refuses to replace an existing file
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new QuailError(`${path} exists: a selector names one key; choose another selector or use rotate`, false);
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

function makeDir(path: string, owner: KeyOwner | undefined): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  if (owner) chownSync(path, owner.uid, owner.gid);
}

/**
 * Generates a key for domain/selector and writes it (0600, `owner`); makes it the active one when `activate`
 * or when the domain has none. Returns the public TXT record's value.
 */
export function generateKey(o: {
  root: string;
  domain: string;
  selector: string;
  algorithm: KeyAlgorithm;
  owner?: KeyOwner;
  activate: boolean;
}): { record: string; path: string; active: boolean } {
  const domain = checkDomain(o.domain);
  const selector = checkSelector(o.selector);
  makeDir(dkimDir(o.root), o.owner);
  makeDir(join(dkimDir(o.root), domain), o.owner);
  const { privateKey } =
    o.algorithm === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const path = keyPath(o.root, domain, selector);
  writePrivate(path, pem, o.owner, true);
  const active = o.activate || activeSelector(o.root, domain) === null;
  if (active) setActive(o.root, domain, selector, o.owner);
  return { record: publicRecord(privateKey), path, active };
}

/** Makes `selector` (whose key must exist) the one mail is signed with. */
export function setActive(root: string, domain: string, selector: string, owner?: KeyOwner): void {
  readKey(root, domain, selector); // must exist and be usable
  writePrivate(join(dkimDir(root), domain, 'selector'), `${selector}\n`, owner, false);
}

/** The active selector of a domain, or null when it has none (no signing). */
export function activeSelector(root: string, domain: string): string | null {
  try {
    const s = readFileSync(join(dkimDir(root), domain, 'selector'), 'latin1').trim();
    return s === '' ? null : s;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return null;
    throw new QuailError(`cannot read ${join(dkimDir(root), domain, 'selector')}: ${String(err)}`, true);
  }
}

/** The domains that have a key directory, sorted. */
export function listDomains(root: string): string[] {
  try {
    return readdirSync(dkimDir(root), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new QuailError(`cannot read ${dkimDir(root)}: ${String(err)}`, true);
  }
}

/**
 * The domains that have a key directory, for the signer's per-message check: with no `control/dkim/` (the usual case
 * on a host that signs nothing) one stat that throws nothing says so.
 */
export function keyedDomains(root: string): ReadonlySet<string> {
  return statSync(dkimDir(root), { throwIfNoEntry: false }) === undefined ? new Set() : new Set(listDomains(root));
}

/** The selectors that have a key file for the domain, sorted. */
export function listSelectors(root: string, domain: string): string[] {
  try {
    return readdirSync(join(dkimDir(root), domain))
      .filter((n) => n.endsWith('.key'))
      .map((n) => n.slice(0, -4))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new QuailError(`cannot read ${join(dkimDir(root), domain)}: ${String(err)}`, true);
  }
}

/** Reads one key; a missing or unreadable file is temporary (mail waits), a file that is no key permanent. */
export function readKey(root: string, domain: string, selector: string): DkimKey {
  const path = keyPath(root, domain, selector);
  let pem: string;
  try {
    pem = readFileSync(path, 'latin1');
  } catch (err) {
    throw new QuailError(`cannot read DKIM key ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, true);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new QuailError(`${path} is not a PEM private key; make a new one with quail dkim rotate ${domain}`, false);
  }
  const t = privateKey.asymmetricKeyType;
  if (t !== 'rsa' && t !== 'ed25519')
    throw new QuailError(`${path} is a ${t ?? 'unknown'} key; DKIM signs with rsa or ed25519`, false);
  return { domain, selector, algorithm: t === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256', privateKey };
}

/** The key the domain signs with now, or null when it has no active selector. */
export function activeKey(root: string, domain: string): DkimKey | null {
  const d = asciiLower(domain);
  if (!DOMAIN.test(d)) return null;
  const s = activeSelector(root, d);
  return s === null ? null : readKey(root, d, s);
}

/** The TXT record value to publish at <selector>._domainkey.<domain> (RFC 6376 3.6.1; ed25519: RFC 8463 4.2). */
export function publicRecord(privateKey: KeyObject): string {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  if (privateKey.asymmetricKeyType === 'ed25519') {
    // RFC 8463: p= is the bare 32-byte public key, not the SubjectPublicKeyInfo around it
    return `v=DKIM1; k=ed25519; p=${spki.subarray(spki.length - 32).toString('base64')}`;
  }
  return `v=DKIM1; k=rsa; p=${spki.toString('base64')}`;
}

/** A TXT value in zone-file form: quoted strings of at most 255 bytes (RFC 1035 3.3.14). */
export function zoneStrings(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return parts.length > 1 ? `( ${parts.join(' ')} )` : (parts[0] ?? '""');
}
