// The cdb hash (SEMANTICS.md C.6): h = 5381; h = (h * 33) xor c, modulo 2^32.

export function cdbHash(key: Uint8Array): number {
  let h = 5381;
  for (const c of key) h = (((h << 5) + h) ^ c) >>> 0;
  return h >>> 0;
}
