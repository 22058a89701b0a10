// crypt(3) verification for imported hashes: MD5-crypt, SHA-crypt and DES crypt written from their specs; bcrypt via bcryptjs.
import { createHash, hash as oneShot, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { cryptThreads } from './crypt-pool.js';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function b64from24(b2: number, b1: number, b0: number, n: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < n; i++) {
    out += ITOA64[w & 0x3f] ?? '';
    w >>= 6;
  }
  return out;
}

const at = (b: Buffer, i: number): number => b[i] ?? 0;

/** Poul-Henning Kamp's MD5-based crypt: `$1$salt$hash`. */
function md5Crypt(password: Buffer, saltIn: string): string {
  const salt = Buffer.from(saltIn.slice(0, 8), 'latin1');
  const magic = Buffer.from('$1$');
  const alt = createHash('md5').update(password).update(salt).update(password).digest();
  const ctx = createHash('md5').update(password).update(magic).update(salt);
  for (let pl = password.length; pl > 0; pl -= 16) ctx.update(alt.subarray(0, Math.min(pl, 16)));
  for (let i = password.length; i > 0; i >>= 1) ctx.update((i & 1) !== 0 ? Buffer.from([0]) : password.subarray(0, 1));
  let f = ctx.digest();
  for (let i = 0; i < 1000; i++) {
    const c = createHash('md5');
    c.update((i & 1) !== 0 ? password : f);
    if (i % 3 !== 0) c.update(salt);
    if (i % 7 !== 0) c.update(password);
    c.update((i & 1) !== 0 ? f : password);
    f = c.digest();
  }
  const out =
    b64from24(at(f, 0), at(f, 6), at(f, 12), 4) +
    b64from24(at(f, 1), at(f, 7), at(f, 13), 4) +
    b64from24(at(f, 2), at(f, 8), at(f, 14), 4) +
    b64from24(at(f, 3), at(f, 9), at(f, 15), 4) +
    b64from24(at(f, 4), at(f, 10), at(f, 5), 4) +
    b64from24(0, 0, at(f, 11), 2);
  return `$1$${salt.toString('latin1')}$${out}`;
}

const repeatTo = (src: Buffer, len: number): Buffer => {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i += src.length) src.copy(out, i, 0, Math.min(src.length, len - i));
  return out;
};

/** One of the 42 round inputs, and where C goes in it. */
interface Shape {
  readonly input: Buffer;
  readonly at: number;
}

/**
 * SHA-crypt's rounds: round i hashes (i odd ? P : C) | (i % 3 ? S : '') | (i % 7 ? P : '') | (i odd ? C : P), C the last
 * digest. The input's layout repeats every 42 rounds, so the 42 layouts are built once with C's place in each, and a
 * round copies C in and makes one one-shot hash: no hash object and no update per part (a third less time than
 * createHash with four updates, docs/PERFORMANCE.md seventeenth pass).
 */
function shaRounds(algo: 'sha256' | 'sha512', c0: Buffer, p: Buffer, s: Buffer, rounds: number): Buffer {
  const size = c0.length;
  const shapes: Shape[] = [];
  for (let k = 0; k < 42; k++) {
    const odd = (k & 1) !== 0;
    // null: C's place
    const parts = [odd ? p : null, ...(k % 3 !== 0 ? [s] : []), ...(k % 7 !== 0 ? [p] : []), odd ? null : p];
    const input = Buffer.alloc(parts.reduce((n, x) => n + (x === null ? size : x.length), 0));
    let off = 0;
    let at = 0;
    for (const x of parts) {
      if (x === null) at = off;
      else x.copy(input, off);
      off += x === null ? size : x.length;
    }
    shapes.push({ input, at });
  }
  let c: Buffer = c0;
  for (let i = 0; i < rounds; i++) {
    const shape = shapes[i % 42] as Shape;
    c.copy(shape.input, shape.at);
    c = oneShot(algo, shape.input, 'buffer');
  }
  return c;
}

/** Ulrich Drepper's SHA-crypt: `$5$` (SHA-256) and `$6$` (SHA-512), with optional `rounds=N$`. */
function shaCrypt(kind: '5' | '6', password: Buffer, setting: string): string {
  const algo = kind === '5' ? 'sha256' : 'sha512';
  const size = kind === '5' ? 32 : 64;
  let rest = setting;
  let rounds = 5000;
  let custom = false;
  const rm = /^rounds=(\d+)\$/.exec(rest);
  if (rm) {
    rounds = Math.min(999999999, Math.max(1000, Number(rm[1])));
    custom = true;
    rest = rest.slice(rm[0].length);
  }
  const saltStr = rest.split('$')[0]?.slice(0, 16) ?? '';
  const salt = Buffer.from(saltStr, 'latin1');
  const h = (): ReturnType<typeof createHash> => createHash(algo);
  const b = h().update(password).update(salt).update(password).digest();
  const a = h().update(password).update(salt);
  let cnt = password.length;
  for (; cnt > size; cnt -= size) a.update(b);
  a.update(b.subarray(0, cnt));
  for (cnt = password.length; cnt > 0; cnt >>= 1) a.update((cnt & 1) !== 0 ? b : password);
  let c: Buffer = a.digest();
  const dp = h();
  for (let i = 0; i < password.length; i++) dp.update(password);
  const p = repeatTo(dp.digest(), password.length);
  const ds = h();
  for (let i = 0; i < 16 + at(c, 0); i++) ds.update(salt);
  const s = repeatTo(ds.digest(), salt.length);
  c = shaRounds(algo, c, p, s, rounds);
  let out = '';
  if (kind === '5') {
    for (let j = 0; j < 10; j++) {
      const [x, y, z] = [j, j + 10, j + 20];
      const t = j % 3 === 0 ? [x, y, z] : j % 3 === 1 ? [z, x, y] : [y, z, x];
      out += b64from24(at(c, t[0] ?? 0), at(c, t[1] ?? 0), at(c, t[2] ?? 0), 4);
    }
    out += b64from24(0, at(c, 31), at(c, 30), 3);
  } else {
    for (let j = 0; j < 21; j++) {
      const [x, y, z] = [j, j + 21, j + 42];
      const t = j % 3 === 0 ? [x, y, z] : j % 3 === 1 ? [y, z, x] : [z, x, y];
      out += b64from24(at(c, t[0] ?? 0), at(c, t[1] ?? 0), at(c, t[2] ?? 0), 4);
    }
    out += b64from24(0, 0, at(c, 63), 2);
  }
  return `$${kind}$${custom ? `rounds=${rounds}$` : ''}${saltStr}$${out}`;
}

// ---- DES crypt: FIPS 46 DES on bit arrays (one 0/1 byte per bit), with crypt(3)'s salt and key conventions. ----

/** FIPS 46 tables. Entries are 1-based bit positions, bit 1 the most significant, as the standard prints them. */
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24,
  16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31,
  23, 15, 7,
];
/** The final permutation is IP's inverse. */
const FP = IP.reduce<number[]>((fp, p, i) => ((fp[p - 1] = i + 1), fp), []);
/** E: the 32-bit half expanded to 48 bits, eight groups of six overlapping by one: 32 1 2 3 4 5, 4 5 6 7 8 9, ... 28 29 30 31 32 1. */
const E = Array.from({ length: 48 }, (_, i) => ((Math.floor(i / 6) * 4 + (i % 6) + 31) % 32) + 1);
const P = [
  16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
];
/** PC-1 drops the eight parity bits (8, 16, ... 64) and splits the key into C (first 28) and D (last 28). */
const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, 63, 55,
  47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];
const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52, 31, 37, 47, 55, 30,
  40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
/** Left rotations of C and D before each of the 16 rounds. */
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
/** S-boxes S1..S8, each 4 rows of 16: row = outer bits (1st and 6th) of the 6-bit input, column = inner four. */
const S = [
  '14 4 13 1 2 15 11 8 3 10 6 12 5 9 0 7 0 15 7 4 14 2 13 1 10 6 12 11 9 5 3 8 4 1 14 8 13 6 2 11 15 12 9 7 3 10 5 0 15 12 8 2 4 9 1 7 5 11 3 14 10 0 6 13',
  '15 1 8 14 6 11 3 4 9 7 2 13 12 0 5 10 3 13 4 7 15 2 8 14 12 0 1 10 6 9 11 5 0 14 7 11 10 4 13 1 5 8 12 6 9 3 2 15 13 8 10 1 3 15 4 2 11 6 7 12 0 5 14 9',
  '10 0 9 14 6 3 15 5 1 13 12 7 11 4 2 8 13 7 0 9 3 4 6 10 2 8 5 14 12 11 15 1 13 6 4 9 8 15 3 0 11 1 2 12 5 10 14 7 1 10 13 0 6 9 8 7 4 15 14 3 11 5 2 12',
  '7 13 14 3 0 6 9 10 1 2 8 5 11 12 4 15 13 8 11 5 6 15 0 3 4 7 2 12 1 10 14 9 10 6 9 0 12 11 7 13 15 1 3 14 5 2 8 4 3 15 0 6 10 1 13 8 9 4 5 11 12 7 2 14',
  '2 12 4 1 7 10 11 6 8 5 3 15 13 0 14 9 14 11 2 12 4 7 13 1 5 0 15 10 3 9 8 6 4 2 1 11 10 13 7 8 15 9 12 5 6 3 0 14 11 8 12 7 1 14 2 13 6 15 0 9 10 4 5 3',
  '12 1 10 15 9 2 6 8 0 13 3 4 14 7 5 11 10 15 4 2 7 12 9 5 6 1 13 14 0 11 3 8 9 14 15 5 2 8 12 3 7 0 4 10 1 13 11 6 4 3 2 12 9 5 15 10 11 14 1 7 6 0 8 13',
  '4 11 2 14 15 0 8 13 3 12 9 7 5 10 6 1 13 0 11 7 4 9 1 10 14 3 5 12 2 15 8 6 1 4 11 13 12 3 7 14 10 15 6 8 0 5 9 2 6 11 13 8 1 4 10 7 9 5 0 15 14 2 3 12',
  '13 2 8 4 6 15 11 1 10 9 3 14 5 0 12 7 1 15 13 8 10 3 7 4 12 5 6 11 0 14 9 2 7 11 4 1 9 12 14 2 0 6 10 13 15 3 5 8 2 1 14 7 4 10 8 13 15 12 9 0 3 5 6 11',
].map((box) => box.split(' ').map(Number));

type Bits = Uint8Array;

const permute = (src: Bits, table: readonly number[]): Bits => Uint8Array.from(table, (p) => src[p - 1] ?? 0);
const toBits = (bytes: Uint8Array): Bits =>
  Uint8Array.from({ length: bytes.length * 8 }, (_, i) => ((bytes[i >> 3] ?? 0) >> (7 - (i & 7))) & 1);
const toBytes = (bits: Bits): Uint8Array =>
  Uint8Array.from({ length: bits.length >> 3 }, (_, i) =>
    bits.subarray(i * 8, i * 8 + 8).reduce((n, b) => (n << 1) | b, 0),
  );

/** The 16 round keys (48 bits each) of a 64-bit key. */
function keySchedule(key: Bits): Bits[] {
  const cd = permute(key, PC1);
  let c = Array.from(cd.subarray(0, 28));
  let d = Array.from(cd.subarray(28));
  return SHIFTS.map((s) => {
    c = [...c.slice(s), ...c.slice(0, s)];
    d = [...d.slice(s), ...d.slice(0, s)];
    return permute(Uint8Array.from([...c, ...d]), PC2);
  });
}

/**
 * `count` successive DES encryptions of a 64-bit block. crypt(3)'s salt perturbs E: for each salt bit i that is
 * set (i = 0..23), E's outputs i and i + 24 trade places, so the same password under another salt is another cipher.
 */
function desEncrypt(block: Bits, keys: readonly Bits[], salt: number, count: number): Bits {
  const e = E.slice();
  for (let i = 0; i < 24; i++) if ((salt >> i) & 1) [e[i], e[i + 24]] = [e[i + 24] ?? 0, e[i] ?? 0];
  const sOut = new Uint8Array(32);
  let b = block;
  for (let n = 0; n < count; n++) {
    const lr = permute(b, IP);
    let l = lr.subarray(0, 32);
    let r = lr.subarray(32);
    for (const k of keys) {
      // f(R, K): expand R with the salted E, XOR the round key, eight S-boxes 6 → 4 bits, then P.
      for (let box = 0; box < 8; box++) {
        const x = (j: number): number => (r[(e[box * 6 + j] ?? 1) - 1] ?? 0) ^ (k[box * 6 + j] ?? 0);
        const v = S[box]?.[(x(0) * 2 + x(5)) * 16 + x(1) * 8 + x(2) * 4 + x(3) * 2 + x(4)] ?? 0;
        for (let j = 0; j < 4; j++) sOut[box * 4 + j] = (v >> (3 - j)) & 1;
      }
      const f = permute(sOut, P);
      const next = l.map((bit, i) => bit ^ (f[i] ?? 0));
      l = r;
      r = next;
    }
    // After the 16th round the halves are not swapped: the output is R16 L16 through IP's inverse.
    b = permute(Uint8Array.from([...r, ...l]), FP);
  }
  return b;
}

/** The 64-bit result as 11 characters of 6 bits each, most significant first (the last 2 bits are zero padding). */
function encode64(block: Bits): string {
  let out = '';
  for (let i = 0; i < 66; i += 6) {
    let v = 0;
    for (let j = i; j < i + 6; j++) v = (v << 1) | (block[j] ?? 0);
    out += ITOA64[v] ?? '';
  }
  return out;
}

/** A password's 8 key bytes: each character's low 7 bits shifted left over the parity bit, zero-filled. */
const desKey = (chunk: Uint8Array): Uint8Array =>
  Uint8Array.from({ length: 8 }, (_, i) => ((chunk[i] ?? 0) << 1) & 0xff);

/**
 * Traditional DES crypt (`setting` = 2 salt characters: 25 encryptions of a zero block, only the first 8 password
 * bytes count) or BSDi extended DES (`_` + 4 characters of iteration count + 4 of salt, every password byte counts).
 * Null when the setting is not one of those.
 */
export function desCrypt(password: Uint8Array, setting: string): string | null {
  const nul = password.indexOf(0);
  const pw = nul >= 0 ? password.subarray(0, nul) : password; // a C string ends at NUL
  const six = (s: string): number | null => {
    let v = 0;
    for (let i = s.length - 1; i >= 0; i--) {
      const d = ITOA64.indexOf(s[i] ?? '');
      if (d < 0) return null;
      v = v * 64 + d; // little-endian: the first character is the lowest 6 bits
    }
    return v;
  };
  const zero = new Uint8Array(64);
  if (setting.startsWith('_')) {
    const count = six(setting.slice(1, 5));
    const salt = six(setting.slice(5, 9));
    if (setting.length < 9 || count === null || salt === null) return null;
    // Longer passwords fold in 8 bytes at a time: the key encrypts itself (no salt, once), then XORs the next 8.
    let key = desKey(pw.subarray(0, 8));
    for (let at = 8; at < pw.length; at += 8) {
      const bits = toBits(key);
      key = toBytes(desEncrypt(bits, keySchedule(bits), 0, 1));
      const next = desKey(pw.subarray(at, at + 8));
      for (let i = 0; i < 8 && at + i < pw.length; i++) key[i] = (key[i] ?? 0) ^ (next[i] ?? 0);
    }
    return `${setting.slice(0, 9)}${encode64(desEncrypt(zero, keySchedule(toBits(key)), salt, count))}`;
  }
  const salt = six(setting.slice(0, 2));
  if (setting.length < 2 || salt === null) return null;
  return `${setting.slice(0, 2)}${encode64(desEncrypt(zero, keySchedule(toBits(desKey(pw.subarray(0, 8)))), salt, 25))}`;
}

// ---- Which scheme a hash is, and verification. ----

export type CryptScheme = 'md5-crypt' | 'sha256-crypt' | 'sha512-crypt' | 'bcrypt' | 'des-crypt' | 'bsdi-crypt';

/** bcrypt: `$2a$`, `$2b$` or `$2y$` (the same algorithm today), a two-digit cost 04..31, 22 salt + 31 hash characters. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./0-9A-Za-z]{53}$/;
const DES = /^[./0-9A-Za-z]{13}$/;
/** BSDi: `_`, 4 characters of iteration count (never `....` = 0), 4 of salt, 11 of hash. */
const BSDI = /^_(?!\.{4})[./0-9A-Za-z]{19}$/;

/** The crypt(3) scheme of `hash` when this module can verify it, else null. */
export function cryptScheme(hash: string): CryptScheme | null {
  if (hash.startsWith('$1$')) return 'md5-crypt';
  if (hash.startsWith('$5$')) return 'sha256-crypt';
  if (hash.startsWith('$6$')) return 'sha512-crypt';
  if (BCRYPT.test(hash)) return 'bcrypt';
  if (DES.test(hash)) return 'des-crypt';
  if (BSDI.test(hash)) return 'bsdi-crypt';
  return null;
}

/**
 * The hash `password` (UTF-8) gives with `hash`'s scheme and setting, or null when the scheme is not one we verify.
 * Computed here, on this thread (crypt-worker.ts runs it on the pool's).
 */
export async function recomputeCrypt(password: string, hash: string): Promise<string | null> {
  const pw = Buffer.from(password, 'utf8');
  switch (cryptScheme(hash)) {
    case 'md5-crypt':
      return md5Crypt(pw, hash.slice(3).split('$')[0] ?? '');
    case 'sha256-crypt':
      return shaCrypt('5', pw, hash.slice(3));
    case 'sha512-crypt':
      return shaCrypt('6', pw, hash.slice(3));
    // bcryptjs hashes the UTF-8 bytes, only the first 72 count (as in every bcrypt); the setting is the first 29 characters.
    case 'bcrypt':
      return bcrypt.hash(password, hash.slice(0, 29));
    case 'des-crypt':
      return desCrypt(pw, hash.slice(0, 2));
    case 'bsdi-crypt':
      return desCrypt(pw, hash.slice(0, 9));
    case null:
      return null;
  }
}

/**
 * True when `password` matches a crypt(3) hash: `$1$` (MD5), `$5$`/`$6$` (SHA-crypt), `$2a$`/`$2b$`/`$2y$`
 * (bcrypt), 13-character DES or 20-character BSDi `_` DES. Never throws: a malformed or unknown hash is false.
 */
export async function verifyCrypt(password: string, hash: string): Promise<boolean> {
  try {
    const got = await cryptThreads.recompute(password, hash, recomputeCrypt);
    if (got === null) return false;
    const g = Buffer.from(got);
    const w = Buffer.from(hash);
    return g.length === w.length && timingSafeEqual(g, w);
  } catch {
    return false;
  }
}
