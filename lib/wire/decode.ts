/**
 * The CBOR reader of the frame codec: reads a frame body in place, one item at a time, so the
 * codec checks each field as it comes off the bytes (no intermediate array of the whole frame, no
 * `DataView` or copy per frame). Text is decoded once per distinct short string (a small cache:
 * a frame's topic is usually one seen a moment ago). Byte strings are views of the body, except short ones, which are copied: a view costs more
 * than copying 40 bytes, and a copy keeps no chunk of the stream alive.
 *
 * What it takes is RFC 8949 well-formed CBOR with definite lengths, which is all a sender writes
 * (lib/wire/cbor.ts). Receivers stay lenient about form where RFC 8949 §4.2 allows: a longer
 * integer head than needed, or an integer-valued float, reads as the number. Indefinite lengths,
 * reserved heads and invalid UTF-8 are malformed. Maps, tags and simple values other than
 * false/true/null/undefined are read past (well-formed, bounded) and stand for "some other
 * value", which no field kind accepts. Nesting is bounded, and no length is believed past the
 * bytes that are there: a hostile body costs at most its own length in work.
 */

/** A body is not well-formed CBOR (the codec wraps it in a `WireError`). */
export class CborError extends Error {}

/** A value no field kind takes: a map, a tag, an unassigned simple value. */
export const OTHER: unique symbol = Symbol("other CBOR value");

/** Deepest nesting of arrays, maps and tags read (frames use 3: frame, records, record). */
export const MAX_DEPTH = 32;

const TWO_32 = 2 ** 32;
/** Byte strings up to this long are copied out; longer ones are views of the body. */
const SMALL_BYTES = 40;
// ignoreBOM: a leading U+FEFF is part of the text, not a byte-order mark to strip.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const f64 = new DataView(new ArrayBuffer(8));

/** One body being read: its bytes, the position, the end. */
export class CborReader {
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;
  end = 0;
  /** Major type of the last head read. */
  #major = 0;
  /** Additional information of the last head read (for major 7). */
  #info = 0;

  reset(buf: Uint8Array): void {
    this.buf = buf;
    this.pos = 0;
    this.end = buf.length;
  }

  /** Bytes left. */
  get left(): number {
    return this.end - this.pos;
  }

  /** Reads an item's head: its argument (a number, or a bigint past 2^53 − 1). */
  #head(): number | bigint {
    const b = this.buf;
    if (this.pos >= this.end) throw new CborError("the body ends in the middle of an item");
    const ib = b[this.pos++]!;
    this.#major = ib >> 5;
    const ai = ib & 31;
    this.#info = ai;
    if (ai < 24) return ai;
    const p = this.pos;
    switch (ai) {
      case 24:
        this.#need(1);
        this.pos = p + 1;
        return b[p]!;
      case 25:
        this.#need(2);
        this.pos = p + 2;
        return (b[p]! << 8) | b[p + 1]!;
      case 26:
        this.#need(4);
        this.pos = p + 4;
        return ((b[p]! << 24) >>> 0) + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
      case 27: {
        this.#need(8);
        this.pos = p + 8;
        const hi = ((b[p]! << 24) >>> 0) + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
        const lo = ((b[p + 4]! << 24) >>> 0) +
          ((b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!);
        if (hi < 0x200000) return hi * TWO_32 + lo;
        return (BigInt(hi) << 32n) | BigInt(lo);
      }
      case 31:
        throw new CborError("an indefinite length (frames use definite lengths only)");
      default:
        throw new CborError(`a reserved head (additional information ${ai})`);
    }
  }

  #need(n: number): void {
    if (this.end - this.pos < n) throw new CborError("the body ends in the middle of an item");
  }

  /**
   * A length from a head, believed only as far as the bytes left can hold: a byte each (bytes,
   * text, array items: each at least one byte), or two (map pairs).
   */
  #length(n: number | bigint, what: "bytes" | "items" | "pairs"): number {
    if (typeof n === "bigint" || n * (what === "pairs" ? 2 : 1) > this.end - this.pos) {
      throw new CborError(`an item claims ${n} ${what}; the body is shorter`);
    }
    return n as number;
  }

  /**
   * The head of an array: its item count (checked against the bytes left), or -1 when the next
   * item is not an array (the position is then unchanged).
   */
  arrayHead(): number {
    if (this.pos < this.end && this.buf[this.pos]! >> 5 !== 4) return -1;
    return this.#length(this.#head(), "items");
  }

  /** Reads one item: number, bigint, string, byte view, boolean, null, undefined, array, OTHER. */
  item(depth = 0): unknown {
    const n = this.#head();
    switch (this.#major) {
      case 0:
        return n;
      case 1:
        return typeof n === "bigint" ? -1n - n : -1 - n;
      case 2: {
        const len = this.#length(n, "bytes");
        const p = this.pos;
        this.pos = p + len;
        if (len > SMALL_BYTES) return this.buf.subarray(p, p + len);
        // A copy is cheaper than a view this small (and keeps no chunk alive).
        const b = this.buf;
        const out = new Uint8Array(len);
        for (let i = 0; i < len; i++) out[i] = b[p + i]!;
        return out;
      }
      case 3:
        return this.#text(this.#length(n, "bytes"));
      case 4: {
        const len = this.#length(n, "items");
        if (depth >= MAX_DEPTH) throw new CborError(`nested deeper than ${MAX_DEPTH}`);
        // Grown as items are read, not sized from the claim: nested heads that each claim the
        // rest of the body would otherwise reserve a multiple of the body (about 256× at 31).
        const out: unknown[] = [];
        for (let i = 0; i < len; i++) out.push(this.item(depth + 1));
        return out;
      }
      case 5: {
        const len = this.#length(n, "pairs");
        if (depth >= MAX_DEPTH) throw new CborError(`nested deeper than ${MAX_DEPTH}`);
        for (let i = 0; i < 2 * len; i++) this.item(depth + 1);
        return OTHER;
      }
      case 6:
        if (depth >= MAX_DEPTH) throw new CborError(`nested deeper than ${MAX_DEPTH}`);
        this.item(depth + 1);
        return OTHER;
      default:
        return this.#simple(n as number);
    }
  }

  /** Major type 7: simple values and floats (the head's argument is their bits). */
  #simple(n: number): unknown {
    switch (this.#info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 25:
        return half(n);
      case 26:
        f64.setUint32(0, n);
        return f64.getFloat32(0);
      case 27: {
        const b = this.buf;
        const p = this.pos - 8;
        for (let i = 0; i < 8; i++) f64.setUint8(i, b[p + i]!);
        return f64.getFloat64(0);
      }
      default:
        return OTHER; // an unassigned simple value (0-19, or 24 with one byte)
    }
  }

  #text(len: number): string {
    const b = this.buf;
    const p = this.pos;
    this.pos = p + len;
    if (len <= MAX_CACHED) return cachedText(b, p, len);
    return decodeText(b, p, len);
  }
}

/** A float16's value (RFC 8949 Appendix D). */
function half(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  const v = exp === 0
    ? mant * 2 ** -24
    : exp !== 31
    ? (mant + 1024) * 2 ** (exp - 25)
    : mant === 0
    ? Infinity
    : NaN;
  return h & 0x8000 ? -v : v;
}

function decodeText(b: Uint8Array, p: number, len: number): string {
  let ascii = true;
  for (let i = p; i < p + len; i++) {
    if (b[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii && len <= 64) {
    let s = "";
    for (let i = p; i < p + len; i++) s += String.fromCharCode(b[i]!);
    return s;
  }
  try {
    return utf8.decode(b.subarray(p, p + len));
  } catch {
    throw new CborError("a text string that is not valid UTF-8");
  }
}

/** Longest text kept in the cache. */
const MAX_CACHED = 64;
/** Slots of the direct-mapped cache (a power of two). */
const SLOTS = 512;
const cacheBytes: (Uint8Array | null)[] = new Array(SLOTS).fill(null);
const cacheText: string[] = new Array(SLOTS).fill("");

/**
 * The text of `len` bytes at `p`, from a direct-mapped cache keyed by a hash of the bytes and
 * checked byte for byte: a topic or node id seen a moment ago costs a hash and a compare.
 */
function cachedText(b: Uint8Array, p: number, len: number): string {
  let h = 0x811c9dc5 ^ len;
  for (let i = p; i < p + len; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  const slot = (h >>> 0) & (SLOTS - 1);
  const kept = cacheBytes[slot];
  if (kept !== null && kept !== undefined && kept.length === len) {
    let same = true;
    for (let i = 0; i < len; i++) {
      if (kept[i] !== b[p + i]) {
        same = false;
        break;
      }
    }
    if (same) return cacheText[slot]!;
  }
  const s = decodeText(b, p, len);
  cacheBytes[slot] = b.slice(p, p + len);
  cacheText[slot] = s;
  return s;
}
