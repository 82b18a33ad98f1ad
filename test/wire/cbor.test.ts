/**
 * lib/wire/cbor.ts: the hand-written deterministic encoder, checked byte for byte against cbor-x
 * (the encoder the codec used before) and against a small, obviously-correct reference encoder
 * written here from RFC 8949 §3 / §4.2.1. Every input is seeded, so failures replay.
 *
 * cbor-x differs from the deterministic subset in two places, both pinned below: it writes
 * integers ≥ 2^32 as float64 (0xfb), and it writes a lone UTF-16 surrogate in a short string
 * (< 64 UTF-16 units) as the raw 3-byte surrogate (invalid UTF-8) where TextEncoder, and so
 * `encodeFrame`, writes U+FFFD. Everywhere else the bytes must be identical.
 */
import { describe, expect, test } from "bun:test";
import { Decoder } from "cbor-x/decode";
import { Encoder } from "cbor-x/encode";
import { encodeFrame, type Item, utf8Length } from "../../lib/wire/cbor.ts";
import { prng } from "../helpers/quic.ts";

const cborx = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });
const textEncoder = new TextEncoder();

/** cbor-x's body behind the same 4-byte big-endian length. */
function cborxFrame(items: readonly Item[]): Uint8Array {
  const body = cborx.encode(items) as Uint8Array;
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** Reference encoder: RFC 8949 heads via BigInt, text via TextEncoder. */
function refHead(major: number, n: number): number[] {
  const m = major << 5;
  if (n < 24) return [m | n];
  const widths: [number, number][] = [[0x100, 1], [0x10000, 2], [2 ** 32, 4], [2 ** 64, 8]];
  const [, w] = widths.find(([lim]) => n < lim)!;
  const out = [m | { 1: 24, 2: 25, 4: 26, 8: 27 }[w]!];
  const big = BigInt(n);
  for (let i = w - 1; i >= 0; i--) out.push(Number((big >> BigInt(8 * i)) & 0xffn));
  return out;
}

function refItem(v: Item): number[] {
  if (typeof v === "number") return refHead(0, v);
  if (typeof v === "string") {
    const b = textEncoder.encode(v);
    return [...refHead(3, b.length), ...b];
  }
  if (v instanceof Uint8Array) return [...refHead(2, v.length), ...v];
  if (v === null) return [0xf6];
  if (v === true) return [0xf5];
  if (v === false) return [0xf4];
  return [...refHead(4, v.length), ...v.flatMap((s) => refItem(s))];
}

function refFrame(items: readonly Item[]): Uint8Array {
  const body = [...refHead(4, items.length), ...items.flatMap(refItem)];
  return new Uint8Array([
    (body.length >>> 24) & 0xff,
    (body.length >>> 16) & 0xff,
    (body.length >>> 8) & 0xff,
    body.length & 0xff,
    ...body,
  ]);
}

const UINT_BOUNDARIES = [
  0,
  1,
  23,
  24,
  25,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 40,
  2 ** 53 - 1,
];
const LENGTH_BOUNDARIES = [0, 1, 23, 24, 255, 256, 65535, 65536];

/** A random string of `kind`; `lone` allows unpaired surrogates. */
function randString(rand: () => number, kind: number, len: number): string {
  const ch = (lo: number, hi: number) => String.fromCodePoint(lo + Math.floor(rand() * (hi - lo)));
  let s = "";
  for (let i = 0; i < len; i++) {
    switch (kind) {
      case 0: // ASCII, incl. control characters
        s += ch(0, 0x80);
        break;
      case 1: // two-byte UTF-8
        s += ch(0x80, 0x800);
        break;
      case 2: // three-byte UTF-8, surrogates excluded
        s += rand() < 0.5 ? ch(0x800, 0xd800) : ch(0xe000, 0x10000);
        break;
      case 3: // four-byte UTF-8 (surrogate pairs)
        s += ch(0x10000, 0x110000);
        break;
      case 4: // lone surrogates among other characters
        s += rand() < 0.4 ? ch(0xd800, 0xe000) : ch(0, 0x10000);
        break;
      default: { // a mix
        const k = Math.floor(rand() * 4);
        s += randString(rand, k, 1);
      }
    }
  }
  return s;
}

function randBytes(rand: () => number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** A random item; `cborxSafe` keeps to inputs where cbor-x writes the deterministic form. */
function randItem(rand: () => number, cborxSafe: boolean): Item {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const smallLen =
    () => (rand() < 0.2 ? pick([0, 23, 24, 25, 63, 64, 65, 255, 256]) : Math.floor(rand() * 40));
  const strKind = () => (cborxSafe ? pick([0, 1, 2, 3, 5]) : Math.floor(rand() * 6));
  switch (Math.floor(rand() * 7)) {
    case 0: {
      const n = rand() < 0.5
        ? pick(UINT_BOUNDARIES)
        : Math.floor(rand() * 2 ** (1 + Math.floor(rand() * 53)));
      return cborxSafe && n >= 2 ** 32 ? n % 2 ** 32 : n;
    }
    case 1:
      return randString(rand, strKind(), smallLen());
    case 2:
      return randBytes(rand, rand() < 0.3 ? pick(LENGTH_BOUNDARIES.slice(0, 7)) : smallLen());
    case 3:
      return rand() < 0.5;
    case 4:
      return null;
    case 5: {
      const n = rand() < 0.2 ? pick([0, 23, 24]) : Math.floor(rand() * 6);
      return Array.from({ length: n }, () => randString(rand, strKind(), smallLen()));
    }
    default:
      return rand() < 0.5 ? "" : randString(rand, 0, 300);
  }
}

function randItems(rand: () => number, cborxSafe: boolean): Item[] {
  const n = rand() < 0.1 ? [0, 23, 24, 25][Math.floor(rand() * 4)]! : Math.floor(rand() * 10);
  return Array.from({ length: n }, () => randItem(rand, cborxSafe));
}

describe("encodeFrame: fixed cases", () => {
  test("unsigned integers at every head-size boundary", () => {
    for (const n of UINT_BOUNDARIES) {
      const ours = encodeFrame([n]);
      expect([...ours]).toEqual([...refFrame([n])]);
      if (n < 2 ** 32) expect([...ours]).toEqual([...cborxFrame([n])]);
      // cbor-x reads it back as the same value (a bigint from the 8-byte form).
      expect(decoder.decode(ours.subarray(4))).toEqual([n >= 2 ** 32 ? BigInt(n) : n]);
    }
    expect([...encodeFrame([23])]).toEqual([0, 0, 0, 2, 0x81, 0x17]);
    expect([...encodeFrame([24])]).toEqual([0, 0, 0, 3, 0x81, 0x18, 24]);
    expect([...encodeFrame([65536])]).toEqual([0, 0, 0, 6, 0x81, 0x1a, 0, 1, 0, 0]);
    expect([...encodeFrame([2 ** 53 - 1])]).toEqual([
      0,
      0,
      0,
      10,
      0x81,
      0x1b,
      0,
      0x1f,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
    ]);
  });

  test("integers ≥ 2^32: the 8-byte integer head, where cbor-x writes a float64", () => {
    for (const n of [2 ** 32, 2 ** 40 + 5, 2 ** 53 - 1]) {
      const ours = encodeFrame([n]);
      expect(ours[5]).toBe(0x1b); // major 0, 8-byte argument
      expect(cborxFrame([n])[5]).toBe(0xfb); // cbor-x: float64, not deterministic CBOR
    }
  });

  test("strings: empty, ASCII, 2-, 3-, 4-byte UTF-8, at length boundaries", () => {
    const cases = [
      "",
      "a",
      "x".repeat(23),
      "x".repeat(24),
      "x".repeat(255),
      "x".repeat(256),
      "x".repeat(65535),
      "x".repeat(65536),
      "é",
      "é".repeat(12), // 24 bytes from 12 units
      "€",
      "€".repeat(8), // 24 bytes
      "😀",
      "😀".repeat(6), // 24 bytes from 12 units
      "a€😀é\u0000\u007f\u0080\u07ff\u0800\uffff",
      "ü".repeat(40_000), // 80,000 bytes: a 4-byte length head
    ];
    for (const s of cases) {
      const ours = encodeFrame([s]);
      expect([...ours]).toEqual([...cborxFrame([s])]);
      expect([...ours]).toEqual([...refFrame([s])]);
      expect(decoder.decode(ours.subarray(4))).toEqual([s]);
    }
  });

  test("lone surrogates: U+FFFD (3 bytes) as TextEncoder writes it, with the right length head", () => {
    expect([...textEncoder.encode("\ud800")]).toEqual([0xef, 0xbf, 0xbd]);
    expect(Buffer.byteLength("\udfff")).toBe(3);
    const cases = [
      "\ud800",
      "\udc00",
      "a\udc00b",
      "\ud800\ud800",
      "\udc00\ud800", // reversed pair: two lone surrogates
      "x\ud83d", // high surrogate at the very end
      "\ud83d\ude00\ud83d", // a pair, then a lone one
      "\ud800".repeat(8), // 24 bytes: the length head grows at this boundary
      "\ud800".repeat(100), // long: cbor-x uses TextEncoder too
    ];
    for (const s of cases) {
      const ours = encodeFrame([s]);
      const expected = textEncoder.encode(s);
      expect([...ours]).toEqual([...refFrame([s])]);
      expect(utf8Length(s)).toBe(expected.length);
      const decoded = decoder.decode(ours.subarray(4)) as string[];
      expect(decoded).toEqual([new TextDecoder().decode(expected)]);
      expect(decoded[0]).not.toMatch(/[\ud800-\udfff](?![\udc00-\udfff])/u);
    }
    // cbor-x's short-string path writes the surrogate itself (ED A0 80), which is not UTF-8.
    expect([...cborxFrame(["\ud800"]).subarray(5)]).toEqual([0x63, 0xed, 0xa0, 0x80]);
    expect([...encodeFrame(["\ud800"]).subarray(5)]).toEqual([0x63, 0xef, 0xbf, 0xbd]);
  });

  test("bytes at length boundaries, booleans, null, arrays of strings", () => {
    for (const n of LENGTH_BOUNDARIES) {
      const b = randBytes(prng(n + 1), n);
      expect([...encodeFrame([b])]).toEqual([...cborxFrame([b])]);
    }
    const misc: Item[][] = [
      [],
      [true, false, null],
      [[]],
      [["a", "", "é", "😀"]],
      [Array.from({ length: 24 }, (_, i) => String(i))],
      [7, "t", new Uint8Array([1, 2, 3]), true, null, ["x", "y"]],
      Array.from({ length: 24 }, () => null),
      Array.from({ length: 256 }, (_, i) => i),
    ];
    for (const items of misc) {
      expect([...encodeFrame(items)]).toEqual([...cborxFrame(items)]);
      expect([...encodeFrame(items)]).toEqual([...refFrame(items)]);
    }
  });

  test("a 64 KiB + 1 byte string and byte string: 4-byte length heads, prefix counts the body", () => {
    const b = new Uint8Array(65537).fill(7);
    const f = encodeFrame([b, "z".repeat(65537)]);
    expect(new DataView(f.buffer).getUint32(0)).toBe(f.length - 4);
    expect(f.length - 4).toBe(1 + 5 + 65537 + 5 + 65537);
    expect([...f]).toEqual([...cborxFrame([b, "z".repeat(65537)])]);
  });
});

describe("encodeFrame: seeded random arrays", () => {
  test("5,000 arrays within cbor-x's deterministic range: identical bytes", () => {
    const rand = prng(20240601);
    for (let i = 0; i < 5000; i++) {
      const items = randItems(rand, true);
      const ours = encodeFrame(items);
      const theirs = cborxFrame(items);
      if (ours.length !== theirs.length || !ours.every((b, j) => b === theirs[j])) {
        throw new Error(`iteration ${i}: differs from cbor-x for ${JSON.stringify(items)}`);
      }
      expect(new DataView(ours.buffer).getUint32(0)).toBe(ours.length - 4);
    }
  });

  test("5,000 arrays of every input (incl. ≥ 2^32, lone surrogates): the reference bytes, and cbor-x reads them back", () => {
    const rand = prng(77);
    const norm = (v: unknown): unknown =>
      typeof v === "bigint"
        ? Number(v)
        : typeof v === "string"
        ? new TextDecoder().decode(textEncoder.encode(v))
        : Array.isArray(v)
        ? v.map(norm)
        : v;
    for (let i = 0; i < 5000; i++) {
      const items = randItems(rand, false);
      const ours = encodeFrame(items);
      const ref = refFrame(items);
      if (ours.length !== ref.length || !ours.every((b, j) => b === ref[j])) {
        throw new Error(`iteration ${i}: differs from the reference for ${JSON.stringify(items)}`);
      }
      expect(norm(decoder.decode(ours.subarray(4)))).toEqual(norm(items));
    }
  });
});

describe("utf8Length", () => {
  test("agrees with TextEncoder and Buffer.byteLength on 20,000 seeded strings", () => {
    const rand = prng(5150);
    for (let i = 0; i < 20_000; i++) {
      const s = randString(rand, Math.floor(rand() * 6), Math.floor(rand() * 50));
      const n = utf8Length(s);
      const te = textEncoder.encode(s).length;
      if (n !== te || n !== Buffer.byteLength(s)) {
        throw new Error(`iteration ${i}: ${JSON.stringify(s)}: ${n} vs ${te}`);
      }
    }
  });

  test("fixed cases", () => {
    expect(utf8Length("")).toBe(0);
    expect(utf8Length("abc")).toBe(3);
    expect(utf8Length("\u007f\u0080")).toBe(3);
    expect(utf8Length("\u07ff\u0800")).toBe(5);
    expect(utf8Length("\uffff")).toBe(3);
    expect(utf8Length("😀")).toBe(4);
    expect(utf8Length("\ud800")).toBe(3);
    expect(utf8Length("\ud800\ud800\udc00")).toBe(3 + 4);
    expect(utf8Length("\udc00\ud800")).toBe(6);
  });
});
