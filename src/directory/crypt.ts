// crypt(3) verification for imported hashes: MD5-crypt ($1$) and SHA-crypt ($5$, $6$), written from their specs.
import { createHash, timingSafeEqual } from 'node:crypto';

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
export function md5Crypt(password: Buffer, saltIn: string): string {
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
    b64from24(at(f, 0), at(f, 6), at(f, 12), 4) + b64from24(at(f, 1), at(f, 7), at(f, 13), 4) +
    b64from24(at(f, 2), at(f, 8), at(f, 14), 4) + b64from24(at(f, 3), at(f, 9), at(f, 15), 4) +
    b64from24(at(f, 4), at(f, 10), at(f, 5), 4) + b64from24(0, 0, at(f, 11), 2);
  return `$1$${salt.toString('latin1')}$${out}`;
}

const repeatTo = (src: Buffer, len: number): Buffer => {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i += src.length) src.copy(out, i, 0, Math.min(src.length, len - i));
  return out;
};

/** Ulrich Drepper's SHA-crypt: `$5$` (SHA-256) and `$6$` (SHA-512), with optional `rounds=N$`. */
export function shaCrypt(kind: '5' | '6', password: Buffer, setting: string): string {
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
  let c = a.digest();
  const dp = h();
  for (let i = 0; i < password.length; i++) dp.update(password);
  const p = repeatTo(dp.digest(), password.length);
  const ds = h();
  for (let i = 0; i < 16 + at(c, 0); i++) ds.update(salt);
  const s = repeatTo(ds.digest(), salt.length);
  for (let i = 0; i < rounds; i++) {
    const x = h();
    x.update((i & 1) !== 0 ? p : c);
    if (i % 3 !== 0) x.update(s);
    if (i % 7 !== 0) x.update(p);
    x.update((i & 1) !== 0 ? c : p);
    c = x.digest();
  }
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

/** True when password matches a `$1$`, `$5$` or `$6$` hash; other schemes (DES, bcrypt) are not supported yet. */
export function verifyCrypt(password: string, hash: string): boolean {
  const pw = Buffer.from(password, 'utf8');
  let got: string;
  if (hash.startsWith('$1$')) got = md5Crypt(pw, hash.slice(3).split('$')[0] ?? '');
  else if (hash.startsWith('$5$') || hash.startsWith('$6$')) got = shaCrypt(hash[1] === '5' ? '5' : '6', pw, hash.slice(3));
  else return false;
  const g = Buffer.from(got);
  const w = Buffer.from(hash);
  return g.length === w.length && timingSafeEqual(g, w);
}
