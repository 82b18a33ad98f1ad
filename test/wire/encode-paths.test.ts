/**
 * The codec's encoder has a fast path (numbers, texts, bytes, text lists, no records) and a
 * general one (every kind, and the errors). Both must write the same bytes: checked here for
 * every frame type of the bus and session codecs, with seeded random values at and under their
 * limits, absent optionals in the middle and at the end, and records present or not.
 */
import { describe, expect, test } from "bun:test";
import { BUS_FRAMES, busCodec } from "../../lib/messaging/frames.ts";
import { SESSION_FRAMES, sessionCodec } from "../../lib/peer/frames.ts";
import { encodeFrame, type Item } from "../../lib/wire/cbor.ts";
import type { Codec, FieldSpec, FrameSpec } from "../../lib/wire/codec.ts";
import { prng } from "../helpers/quic.ts";

const CHARS = ["a", "Z", ".", "_", "é", "中", "😀", "0"];

function text(rand: () => number, maxBytes: number): string {
  let s = "";
  let bytes = 0;
  const want = Math.floor(rand() * Math.min(maxBytes, rand() < 0.1 ? maxBytes : 40));
  for (let i = 0; i < 4 * want && bytes < want; i++) {
    const c = CHARS[Math.floor(rand() * CHARS.length)]!;
    const n = new TextEncoder().encode(c).length;
    if (bytes + n > want) break;
    s += c;
    bytes += n;
  }
  return s;
}

/** A valid value of `f` (or, for an optional field, sometimes none). */
function valueOf(rand: () => number, f: FieldSpec): unknown {
  if (f.optional && rand() < 0.3) return rand() < 0.5 ? undefined : null;
  switch (f.kind) {
    case "uint": {
      const cap = Math.min(f.max, Number.MAX_SAFE_INTEGER);
      const picks = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32, cap];
      return Math.min(cap, picks[Math.floor(rand() * picks.length)]!);
    }
    case "str":
      return text(rand, f.max);
    case "bytes":
      return Uint8Array.from(
        { length: Math.floor(rand() * Math.min(f.max, rand() < 0.5 ? 40 : 2000)) },
        () => Math.floor(rand() * 256),
      );
    case "bool":
      return rand() < 0.5;
    case "strs":
      return Array.from(
        { length: Math.floor(rand() * Math.min(f.max, 5)) },
        () => text(rand, f.itemMax ?? 1024),
      );
    case "records":
      return Array.from({ length: rand() < 0.5 ? 0 : 1 + Math.floor(rand() * 3) }, () => {
        const r: Record<string, unknown> = {};
        for (const g of f.fields ?? []) r[g.name] = valueOf(rand, g);
        return r;
      });
  }
}

/** What the general path writes: the items in order, records as arrays, trailing nulls left out. */
function reference(spec: FrameSpec, fields: Record<string, unknown>): Uint8Array {
  const toItem = (f: FieldSpec, v: unknown): Item => {
    if (v === undefined || v === null) return null;
    if (f.kind === "records") {
      return (v as Record<string, unknown>[]).map((r) => {
        const items = (f.fields ?? []).map((g) => toItem(g, r[g.name]));
        while (items.length > 0 && items[items.length - 1] === null) items.pop();
        return items;
      });
    }
    return v as Item;
  };
  const items: Item[] = [spec.type, ...spec.fields.map((f) => toItem(f, fields[f.name]))];
  while (items.length > 1 && items[items.length - 1] === null) items.pop();
  return encodeFrame(items);
}

describe("the encoder's two paths write the same bytes", () => {
  const cases: [string, Codec, readonly FrameSpec[]][] = [
    ["bus", busCodec, BUS_FRAMES],
    ["session", sessionCodec, SESSION_FRAMES],
  ];
  for (const [what, codec, specs] of cases) {
    test(`${what} frames: 300 random frames of each type`, () => {
      const rand = prng(what.length);
      let checked = 0;
      for (const spec of specs) {
        for (let i = 0; i < 300; i++) {
          const fields: Record<string, unknown> = {};
          for (const f of spec.fields) fields[f.name] = valueOf(rand, f);
          const got = codec.encode(spec.name, fields);
          expect(got).toEqual(reference(spec, fields));
          expect(codec.decodeBody(got.subarray(4))).toMatchObject({ name: spec.name });
          checked++;
        }
      }
      expect(checked).toBe(300 * specs.length);
    });
  }

  test("a bigint in a uint field (as the decoder gives for 8-byte integers) encodes as the number", () => {
    const a = busCodec.encode("PING", { id: 2n ** 40n });
    expect(a).toEqual(busCodec.encode("PING", { id: 2 ** 40 }));
    expect(() => busCodec.encode("PING", { id: 2n ** 60n })).toThrow(
      "PING.id: not an unsigned integer",
    );
  });

  test("the fast path's refusals are the general path's: each bad value names its field", () => {
    const good = { sid: 1, topic: "t", payload: new Uint8Array(1) };
    const bad: [Record<string, unknown>, string][] = [
      [{ ...good, sid: -1 }, "MSG.sid: not an unsigned integer"],
      [{ ...good, sid: 1.5 }, "MSG.sid: not an unsigned integer"],
      [{ ...good, topic: 7 }, "MSG.topic: not a text string"],
      [{ ...good, topic: "é".repeat(200) }, "MSG.topic: longer than 256 bytes"],
      [{ ...good, payload: "x" }, "MSG.payload: not a byte string"],
      [{ ...good, payload: undefined }, "MSG.payload: missing"],
    ];
    for (const [fields, message] of bad) {
      expect(() => busCodec.encode("MSG", fields)).toThrow(message);
    }
    expect(() =>
      busCodec.encode("FWD", {
        topic: "t",
        payload: new Uint8Array(0),
        ttl: 1,
        dests: ["x".repeat(17)],
        groups: [],
      })
    ).toThrow("FWD.dests: an item is longer than 16 bytes");
  });
});
