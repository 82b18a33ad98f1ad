/**
 * lib/wire/decode.ts: the in-place CBOR reader of the frame codec. cbor-x's decoder is the oracle
 * for well-formed input; the reader's own rules (definite lengths only, strict UTF-8, maps and
 * tags as a value no field takes, bounded nesting, the text cache) are pinned one by one.
 */
import { describe, expect, test } from "bun:test";
import { Decoder } from "cbor-x/decode";
import { Encoder } from "cbor-x/encode";
import { CborError, CborReader, MAX_DEPTH, OTHER } from "../../lib/wire/decode.ts";
import { Codec, WireError } from "../../lib/wire/codec.ts";
import { prng } from "../helpers/quic.ts";

const oracle = new Decoder({ useRecords: false, mapsAsObjects: true });
const cborx = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

function read(bytes: number[] | Uint8Array): unknown {
  const r = new CborReader();
  r.reset(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  const v = r.item();
  if (r.left !== 0) throw new CborError(`${r.left} bytes left`);
  return v;
}

/** A random value of the kinds frames carry (and unsigned integers across every head size). */
function value(rand: () => number, depth: number): unknown {
  const k = Math.floor(rand() * (depth > 2 ? 6 : 7));
  switch (k) {
    case 0:
      return [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1][
        Math.floor(rand() * 10)
      ];
    case 1: {
      const alphabet = ["a", "b", ".", "é", "中", "😀", "z", "0"];
      let s = "";
      const n = Math.floor(rand() * (rand() < 0.2 ? 90 : 12));
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      return s;
    }
    case 2: {
      const n = Math.floor(rand() * (rand() < 0.5 ? 40 : 300));
      return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
    }
    case 3:
      return rand() < 0.5;
    case 4:
      return null;
    case 5:
      return -1 - Math.floor(rand() * 1000);
    default:
      return Array.from({ length: Math.floor(rand() * 5) }, () => value(rand, depth + 1));
  }
}

describe("CborReader", () => {
  test("reads what cbor-x reads, for 5,000 random values of the frame kinds", () => {
    const rand = prng(17);
    for (let i = 0; i < 5000; i++) {
      const v = value(rand, 0);
      const bytes = cborx.encode(v) as Uint8Array;
      expect(read(bytes)).toEqual(oracle.decode(bytes));
    }
  });

  test("lenient about form: long heads, floats of every width", () => {
    expect(read([0x19, 0x00, 0x05])).toBe(5); // 5 in a 2-byte head
    expect(read([0x1b, 0, 0, 0, 0, 0, 0, 0, 7])).toBe(7);
    expect(read([0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).toBe(2n ** 64n - 1n);
    expect(read([0xf9, 0x3c, 0x00])).toBe(1); // float16
    expect(read([0xf9, 0xc4, 0x00])).toBe(-4);
    expect(read([0xf9, 0x7c, 0x00])).toBe(Infinity);
    expect(read([0xf9, 0x00, 0x01])).toBe(2 ** -24); // subnormal
    expect(read([0xfa, 0x47, 0xc3, 0x50, 0x00])).toBe(100000); // float32
    expect(read([0xfb, 0x40, 0x14, 0, 0, 0, 0, 0, 0])).toBe(5); // float64
    expect(read([0xf7])).toBe(undefined);
  });

  test("maps, tags and unassigned simple values are read past, as a value no field takes", () => {
    expect(read([0xa1, 0x61, 0x6b, 0x01])).toBe(OTHER); // {"k": 1}
    expect(read([0xd8, 0x40, 0x42, 1, 2])).toBe(OTHER); // tag 64 (a typed array), bytes
    expect(read([0xe0])).toBe(OTHER);
    expect(read([0xf8, 0x20])).toBe(OTHER);
    expect(read([0x82, 0xa0, 0x01])).toEqual([OTHER, 1]);
  });

  test("malformed: indefinite lengths, reserved heads, invalid UTF-8, short bodies, deep nesting", () => {
    const bad: [number[], RegExp][] = [
      [[0x9f, 0x01, 0xff], /indefinite length/],
      [[0x5f, 0x41, 0x00, 0xff], /indefinite length/],
      [[0xff], /indefinite length/], // a lone "break"
      [[0x1c], /reserved head/],
      [[0xfd], /reserved head/],
      [[0x62, 0xc3, 0x28], /not valid UTF-8/],
      [[0x61, 0xff], /not valid UTF-8/],
      [[0x63, 0x61], /claims 3 bytes/],
      [[0x9a, 0xff, 0xff, 0xff, 0xff], /claims 4294967295 items/],
      [[0xbb, 0, 0, 0, 1, 0, 0, 0, 0], /claims 4294967296 pairs/],
      [[0x19, 0x01], /ends in the middle/],
      [[], /ends in the middle/],
    ];
    for (const [bytes, why] of bad) {
      expect(() => read(bytes)).toThrow(why);
    }
    const deep = new Uint8Array(MAX_DEPTH + 2).fill(0x81);
    deep[MAX_DEPTH + 1] = 0x00;
    expect(() => read(deep)).toThrow(`nested deeper than ${MAX_DEPTH}`);
    const ok = new Uint8Array(MAX_DEPTH + 1).fill(0x81);
    ok[MAX_DEPTH] = 0x00;
    expect(() => read(ok)).not.toThrow();
    for (const b of [0xd8, 0xa1]) {
      const nested = new Uint8Array(200).fill(b === 0xd8 ? 0xc1 : 0xa1);
      expect(() => read(nested)).toThrow(CborError);
    }
  });

  test("nested heads that each claim the rest of the body cost about the body, not a multiple", () => {
    // 31 arrays deep, each head claiming (nearly) every byte after it, then 1 MiB of zeros.
    const size = 1024 * 1024;
    const body = new Uint8Array(size);
    let o = 0;
    for (let d = 0; d < 31; d++) {
      const left = size - o - 5;
      body[o] = 0x9a; // array, 4-byte count
      body[o + 1] = left >>> 24;
      body[o + 2] = (left >>> 16) & 0xff;
      body[o + 3] = (left >>> 8) & 0xff;
      body[o + 4] = left & 0xff;
      o += 5;
    }
    const before = process.memoryUsage().rss;
    expect(() => read(body)).toThrow(CborError); // the claims do not add up
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });

  test("a leading U+FEFF is text, not a byte-order mark to drop", () => {
    const bom = "\ufeffabc";
    expect(read(cborx.encode(bom) as Uint8Array)).toBe(bom);
    const long = "\ufeff" + "x".repeat(100);
    expect(read(cborx.encode(long) as Uint8Array)).toBe(long);
  });

  test("the text cache gives each string its own bytes' text, across collisions and evictions", () => {
    const rand = prng(3);
    const words = Array.from({ length: 3000 }, (_, i) => `t.${i}.${Math.floor(rand() * 1e6)}`);
    for (let round = 0; round < 3; round++) {
      for (const w of words) expect(read(cborx.encode(w) as Uint8Array)).toBe(w);
    }
    // Same length, one byte apart; the cached copy is not the body (changing the body after).
    const body = new Uint8Array(cborx.encode("bench.dataA") as Uint8Array);
    expect(read(body)).toBe("bench.dataA");
    body[body.length - 1] = 0x42;
    expect(read(body)).toBe("bench.dataB");
  });

  test("short byte strings are copies, longer ones views of the body", () => {
    const short = new Uint8Array([0x44, 1, 2, 3, 4]);
    const a = read(short) as Uint8Array;
    short[1] = 9;
    expect([...a]).toEqual([1, 2, 3, 4]);
    const long = new Uint8Array([0x58, 64, ...new Uint8Array(64).fill(7)]);
    const b = read(long) as Uint8Array;
    expect(b.buffer).toBe(long.buffer);
    expect([...b]).toEqual(new Array(64).fill(7));
  });
});

describe("the codec on the reader", () => {
  const codec = new Codec([
    {
      type: 12,
      name: "PUB",
      fields: [
        { name: "topic", kind: "str", max: 64 },
        { name: "payload", kind: "bytes", max: 1024 },
        { name: "n", kind: "uint", max: 100, optional: true },
      ],
    },
  ]);
  const raw = (arr: unknown[]) => codec.encodeRaw(arr).subarray(4);

  test("a map or tag where a field is wanted names the field, like any wrong kind", () => {
    const map = new Uint8Array([0x83, 0x0c, 0xa0, 0x40]); // [12, {}, h'']
    expect(() => codec.decodeBody(map)).toThrow("PUB.topic: not a text string");
    const tagged = new Uint8Array([0x83, 0x0c, 0x61, 0x74, 0xd8, 0x40, 0x40]); // bytes in tag 64
    expect(() => codec.decodeBody(tagged)).toThrow("PUB.payload: not a byte string");
  });

  test("malformed CBOR anywhere, also in fields a newer peer appended, is `not valid CBOR`", () => {
    const good = raw([12, "t", new Uint8Array(2), 5, "later"]);
    expect(codec.decodeBody(good)).toMatchObject({ fields: { topic: "t", n: 5 } });
    const cut = good.subarray(0, good.length - 1);
    let e: unknown;
    try {
      codec.decodeBody(cut);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(WireError);
    expect((e as Error).message).toBe(
      "frame: not valid CBOR (an item claims 5 bytes; the body is shorter)",
    );
    expect(() => codec.decodeBody(new Uint8Array([...good, 0x00]))).toThrow(
      "frame: not valid CBOR (1 bytes after the frame's array)",
    );
    expect(() => codec.decodeBody(new Uint8Array([0x01]))).toThrow(
      "frame: not a CBOR array [type, …]",
    );
    // An ignorable type (≥ 0x40) is one item too: bytes after it are malformed.
    expect(codec.decodeBody(raw([0x40, "x"]))).toEqual({ type: 0x40, unknown: true });
    expect(() => codec.decodeBody(new Uint8Array([...raw([0x40, "x"]), 0x00]))).toThrow(
      "frame: not valid CBOR (1 bytes after the frame's array)",
    );
  });
});
