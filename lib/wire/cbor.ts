/**
 * The CBOR encoder of the frame codec: definite lengths, shortest heads, no floats, no tags —
 * exactly the deterministic subset that frames use (RFC 8949 §4.2.1), for the five field kinds
 * (unsigned integers, text, bytes, booleans and null, arrays of text). It writes the 4-byte
 * length prefix and the body into one allocation. lib/wire/decode.ts reads what it writes; the
 * test suite checks this encoder against cbor-x byte for byte.
 */

/** A value a frame array may hold: a scalar, or an array of values (text lists, records). */
export type Item = number | string | Uint8Array | boolean | null | readonly Item[];

const textEncoder = new TextEncoder();
const TWO_32 = 2 ** 32;

/** Bytes of a CBOR head with argument `n`. */
export function headSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < TWO_32 ? 5 : 9;
}

/** Writes a CBOR head (major type, argument `n`) at `off`; returns the offset after it. */
export function writeHead(out: Uint8Array, off: number, major: number, n: number): number {
  const m = major << 5;
  if (n < 24) {
    out[off] = m | n;
    return off + 1;
  }
  if (n < 0x100) {
    out[off] = m | 24;
    out[off + 1] = n;
    return off + 2;
  }
  if (n < 0x10000) {
    out[off] = m | 25;
    out[off + 1] = n >>> 8;
    out[off + 2] = n & 0xff;
    return off + 3;
  }
  if (n < TWO_32) {
    out[off] = m | 26;
    out[off + 1] = n >>> 24;
    out[off + 2] = (n >>> 16) & 0xff;
    out[off + 3] = (n >>> 8) & 0xff;
    out[off + 4] = n & 0xff;
    return off + 5;
  }
  out[off] = m | 27;
  const hi = Math.floor(n / TWO_32);
  const lo = n >>> 0;
  for (let i = 0; i < 4; i++) out[off + 1 + i] = (hi >>> (24 - 8 * i)) & 0xff;
  for (let i = 0; i < 4; i++) out[off + 5 + i] = (lo >>> (24 - 8 * i)) & 0xff;
  return off + 9;
}

/** UTF-8 length of `s` (a lone surrogate counts 3 bytes: TextEncoder writes U+FFFD). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c < 0xdc00 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // four bytes for two UTF-16 units
      i++;
    } else n += 2;
  }
  return n;
}

function textSize(len: number): number {
  return headSize(len) + len;
}

/** Writes text `s` of `len` UTF-8 bytes (head and bytes) at `off`; returns the offset after it. */
export function writeText(out: Uint8Array, off: number, s: string, len: number): number {
  off = writeHead(out, off, 3, len);
  if (len === s.length) {
    for (let i = 0; i < len; i++) out[off + i] = s.charCodeAt(i);
  } else {
    textEncoder.encodeInto(s, out.subarray(off, off + len));
  }
  return off + len;
}

/** Writes byte string `v` (head and bytes) at `off`; returns the offset after it. */
export function writeBytes(out: Uint8Array, off: number, v: Uint8Array): number {
  off = writeHead(out, off, 2, v.length);
  const n = v.length;
  if (n > 32) out.set(v, off);
  else for (let i = 0; i < n; i++) out[off + i] = v[i]!; // cheaper than set() this small
  return off + n;
}

/** UTF-8 lengths of the texts of the frame being encoded, in write order (reused). */
const lens: number[] = [];
let li = 0;

/** Encoded size of `v`; text lengths are appended to `lens` in write order. */
function itemSize(v: Item): number {
  if (typeof v === "number") return headSize(v);
  if (typeof v === "string") {
    const len = utf8Length(v);
    lens.push(len);
    return textSize(len);
  }
  if (v instanceof Uint8Array) return headSize(v.length) + v.length;
  if (v === null || typeof v === "boolean") return 1;
  let size = headSize(v.length);
  for (let i = 0; i < v.length; i++) size += itemSize(v[i]!);
  return size;
}

/** Writes `v` at `off`; returns the offset after it. */
function writeItem(out: Uint8Array, off: number, v: Item): number {
  if (typeof v === "number") return writeHead(out, off, 0, v);
  if (typeof v === "string") return writeText(out, off, v, lens[li++]!);
  if (v instanceof Uint8Array) return writeBytes(out, off, v);
  if (v === null) out[off++] = 0xf6;
  else if (v === true) out[off++] = 0xf5;
  else if (v === false) out[off++] = 0xf4;
  else {
    off = writeHead(out, off, 4, v.length);
    for (let i = 0; i < v.length; i++) off = writeItem(out, off, v[i]!);
  }
  return off;
}

/**
 * Encodes the first `count` of `items` (all of them by default) as one CBOR array behind a
 * 4-byte big-endian length of the body. Integers must be safe non-negative integers (the codec
 * checks fields before calling this).
 */
export function encodeFrame(items: readonly Item[], count = items.length): Uint8Array {
  // Pass 1: sizes (text lengths are kept for pass 2).
  lens.length = 0;
  li = 0;
  let size = headSize(count);
  for (let i = 0; i < count; i++) size += itemSize(items[i]!);
  // Pass 2: write.
  const out = new Uint8Array(4 + size);
  out[0] = size >>> 24;
  out[1] = (size >>> 16) & 0xff;
  out[2] = (size >>> 8) & 0xff;
  out[3] = size & 0xff;
  let off = writeHead(out, 4, 4, count);
  for (let i = 0; i < count; i++) off = writeItem(out, off, items[i]!);
  return out;
}
