// The cdb hash (docs/QMAIL.md C.6): h = 5381; h = (h * 33) xor c, modulo 2^32.

/** The hash of key[start, end) (the whole key by default; a range lets the writer hash a key in place). */
export function cdbHash(key: Uint8Array, start = 0, end = key.length): number {
  let h = 5381;
  for (let i = start; i < end; i++) h = (((h << 5) + h) ^ (key[i] ?? 0)) >>> 0;
  return h >>> 0;
}
