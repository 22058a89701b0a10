// Password hashes: new ones with scrypt (memory-hard, in node:crypto); imported crypt(3) hashes verified too.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { cryptScheme, verifyCrypt } from './crypt.js';

/** log2(N) = 15, r = 8, p = 1: 32 MiB and roughly 0.1 s per hash; the parameters travel in the hash. */
const SCRYPT_DEFAULT = { ln: 15, r: 8, p: 1 } as const;
const KEYLEN = 32;

function scryptAsync(pw: string, salt: Buffer, keylen: number, o: ScryptOptions): Promise<Buffer> {
  return new Promise((res, rej) => {
    scrypt(pw, salt, keylen, o, (err, key) => (err ? rej(err) : res(key)));
  });
}

const opts = (ln: number, r: number, p: number): ScryptOptions => ({
  N: 2 ** ln,
  r,
  p,
  maxmem: 256 * 2 ** ln * r + 1024 * 1024,
});

/** `$scrypt$ln=15,r=8,p=1$<salt base64>$<key base64>` (the PHC string form). */
export async function hashPassword(
  password: string,
  params: { ln: number; r: number; p: number } = SCRYPT_DEFAULT,
): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEYLEN, opts(params.ln, params.r, params.p));
  const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

/** Checks a password against a stored hash (verifyPassword; a test may count the calls). */
export type PasswordVerifier = (password: string, hash: string) => Promise<boolean>;

/**
 * What a login without a usable hash (unknown domain or mailbox, no password set) is verified against, so that it
 * costs what a wrong password costs: the scheme and parameters hashPassword writes, a salt and a key no password
 * gives (the key is all zeros). Without it an unknown login was answered at once and a known one after ~0.1 s of
 * scrypt: a timing oracle telling which mailboxes exist.
 */
export const DUMMY_HASH = `$scrypt$ln=${SCRYPT_DEFAULT.ln},r=${SCRYPT_DEFAULT.r},p=${SCRYPT_DEFAULT.p}$${Buffer.from(
  'quail-dummy-salt',
).toString('base64')}$${Buffer.alloc(KEYLEN).toString('base64').replace(/=+$/, '')}`;

const SCRYPT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** scrypt parameters a stored hash may ask for: at most 1 GiB of memory, so a damaged hash cannot exhaust the host. */
const sane = (ln: number, r: number, p: number): boolean =>
  ln >= 1 && ln <= 22 && r >= 1 && p >= 1 && 128 * 2 ** ln * r <= 2 ** 30;

/**
 * True when `password` matches `hash`: scrypt (ours), or a crypt(3) hash imported from vpopmail — `$1$` (MD5),
 * `$5$`/`$6$` (SHA-crypt), `$2a$`/`$2b$`/`$2y$` (bcrypt), 13-character DES or `_` BSDi DES. An empty, unknown or
 * malformed hash never matches, and verifying never throws.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = SCRYPT.exec(hash);
  if (m) {
    const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (!sane(ln, r, p)) return false;
    const want = Buffer.from(m[5] ?? '', 'base64');
    try {
      const got = await scryptAsync(password, Buffer.from(m[4] ?? '', 'base64'), want.length, opts(ln, r, p));
      return want.length > 0 && timingSafeEqual(got, want);
    } catch {
      return false;
    }
  }
  if (hash === '') return false;
  return verifyCrypt(password, hash);
}

/**
 * True when verifying `hash` costs at least what verifying DUMMY_HASH costs: scrypt with parameters each at least the
 * dummy's. Anything else (an imported crypt(3) hash: md5-crypt, SHA-crypt, bcrypt, DES; a cheaper or malformed scrypt;
 * an unknown scheme) may answer sooner, so `authenticate` adds a dummy verification to its failures.
 */
export function costsAtLeastDummy(hash: string): boolean {
  const m = SCRYPT.exec(hash);
  if (!m) return false;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return sane(ln, r, p) && ln >= SCRYPT_DEFAULT.ln && r >= SCRYPT_DEFAULT.r && p >= SCRYPT_DEFAULT.p;
}

/** True when verifyPassword can check passwords against `hash` (the import reports the others). */
export function canVerify(hash: string): boolean {
  return SCRYPT.test(hash) || cryptScheme(hash) !== null;
}

/** Which scheme a hash uses (for `user info`): scrypt, md5-crypt, sha256-crypt, sha512-crypt, bcrypt, des-crypt, bsdi-crypt, none, `$x$` or unknown. */
export function hashScheme(hash: string): string {
  if (hash === '') return 'none';
  if (hash.startsWith('$scrypt$')) return 'scrypt';
  const known = cryptScheme(hash);
  if (known) return known;
  const m = /^\$(\w+)\$/.exec(hash);
  return m ? `$${m[1] ?? ''}$` : 'unknown';
}
