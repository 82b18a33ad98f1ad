import { describe, expect, test } from "bun:test";
import {
  checkField,
  Codec,
  FIRST_IGNORABLE_TYPE,
  FrameReader,
  type FrameSpec,
  WireError,
} from "../../lib/wire/codec.ts";
import { prng } from "../helpers/quic.ts";

const PUB: FrameSpec = {
  type: 12,
  name: "PUB",
  fields: [
    { name: "topic", kind: "str", max: 256 },
    { name: "payload", kind: "bytes", max: 65536 },
    { name: "seq", kind: "uint", max: 2 ** 53 - 1 },
    { name: "reply", kind: "str", max: 256, optional: true },
  ],
};
const HELLO: FrameSpec = {
  type: 1,
  name: "HELLO",
  fields: [
    { name: "versions", kind: "strs", max: 8, itemMax: 16 },
    { name: "relay", kind: "bool", max: 1 },
  ],
};
const codec = new Codec([PUB, HELLO], 128 * 1024);

function body(frame: Uint8Array): Uint8Array {
  return frame.subarray(4);
}

function wireError(fn: () => unknown): WireError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WireError);
    return e as WireError;
  }
  throw new Error("expected a WireError");
}

describe("frames", () => {
  test("round trip, with the trailing optional field absent or present", () => {
    const a = codec.encode("PUB", { topic: "a.b", payload: new Uint8Array([1, 2]), seq: 7 });
    expect(codec.decodeBody(body(a))).toEqual({
      type: 12,
      name: "PUB",
      fields: { topic: "a.b", payload: new Uint8Array([1, 2]), seq: 7, reply: null },
    });
    const b = codec.encode("PUB", {
      topic: "a",
      payload: new Uint8Array(),
      seq: 0,
      reply: "_inbox.1",
    });
    expect(codec.decodeBody(body(b))).toMatchObject({ fields: { reply: "_inbox.1" } });
    const h = codec.encode("HELLO", { versions: ["macula/1"], relay: true });
    expect(codec.decodeBody(body(h))).toMatchObject({
      name: "HELLO",
      fields: { versions: ["macula/1"], relay: true },
    });
  });

  test("encoding is deterministic and length-prefixed", () => {
    const f = { topic: "t", payload: new Uint8Array([9]), seq: 300 };
    const x = codec.encode("PUB", f);
    expect(codec.encode("PUB", { seq: 300, payload: new Uint8Array([9]), topic: "t" })).toEqual(x);
    expect(new DataView(x.buffer).getUint32(0)).toBe(x.length - 4);
  });

  test("bad values are refused at encode time, naming frame and field", () => {
    expect(
      wireError(() => codec.encode("PUB", { topic: 5, payload: new Uint8Array(), seq: 1 })).message,
    ).toBe(
      "PUB.topic: not a text string",
    );
    expect(wireError(() => codec.encode("PUB", { topic: "t", seq: 1 })).message).toBe(
      "PUB.payload: missing",
    );
    expect(
      wireError(() => codec.encode("PUB", { topic: "t", payload: new Uint8Array(), seq: -1 }))
        .message,
    )
      .toBe("PUB.seq: not an unsigned integer");
    expect(
      wireError(() =>
        codec.encode("PUB", { topic: "x".repeat(257), payload: new Uint8Array(), seq: 1 })
      ).field,
    )
      .toBe("topic");
    expect(wireError(() => codec.encode("NOPE", {})).message).toBe("NOPE: unknown frame type");
  });

  test("decoding names what is wrong; newer fields are ignored; unknown types follow the 0x40 rule", () => {
    const enc = (arr: unknown[]) =>
      body(new Codec([{ type: 999, name: "RAW", fields: [] }]).encodeRaw(arr));
    expect(wireError(() => codec.decodeBody(enc([12, "t", "not bytes", 1]))).message).toBe(
      "PUB.payload: not a byte string",
    );
    expect(
      wireError(() =>
        codec.decodeBody(enc([1, ["a", "b", "c", "d", "e", "f", "g", "h", "i"], true]))
      ).message,
    )
      .toBe("HELLO.versions: 9 items, over the limit of 8");
    expect(codec.decodeBody(enc([1, ["v"], false, "a field from the future"]))).toMatchObject({
      name: "HELLO",
    });
    expect(codec.decodeBody(enc([FIRST_IGNORABLE_TYPE + 1, 1, 2]))).toEqual({
      type: 0x41,
      unknown: true,
    });
    expect(wireError(() => codec.decodeBody(enc([0x3f]))).message).toContain("frame type 63");
    expect(wireError(() => codec.decodeBody(new Uint8Array([0xff]))).message).toContain(
      "not valid CBOR",
    );
    expect(wireError(() => codec.decodeBody(enc(["x"]))).field).toBe("type");
  });
});

describe("frame reader", () => {
  test("splits a stream cut at every possible place", () => {
    const frames = [
      codec.encode("PUB", { topic: "a", payload: new Uint8Array(300), seq: 1 }),
      codec.encode("HELLO", { versions: ["macula/1"], relay: false }),
      codec.encode("PUB", { topic: "b", payload: new Uint8Array(0), seq: 2 }),
    ];
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let o = 0;
    for (const f of frames) {
      all.set(f, o);
      o += f.length;
    }
    for (let cut = 0; cut <= all.length; cut++) {
      const r = new FrameReader(codec.maxFrame);
      const got = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut))];
      expect(got.map((b) => (codec.decodeBody(b) as { name: string }).name)).toEqual([
        "PUB",
        "HELLO",
        "PUB",
      ]);
      expect(r.pending).toBe(0);
    }
  });

  test("a frame arriving a byte at a time, or one large frame in small chunks, comes out whole", () => {
    // The reader sees only lengths and bodies: frames made by hand, any bytes inside.
    const frame = (b: Uint8Array) => {
      const f = new Uint8Array(4 + b.length);
      new DataView(f.buffer).setUint32(0, b.length);
      f.set(b, 4);
      return f;
    };
    const big = new Uint8Array(3 * 1024 * 1024 + 7);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const small = new Uint8Array([7, 8, 9]);
    const r = new FrameReader(16 * 1024 * 1024);
    const got: Uint8Array[] = [];
    const s = frame(small);
    for (let i = 0; i < s.length; i++) got.push(...r.push(s.subarray(i, i + 1)));
    got.push(...r.push(frame(new Uint8Array(0)))); // an empty body is a frame too
    const b = frame(big);
    for (let o = 0; o < b.length; o += 1000) got.push(...r.push(b.subarray(o, o + 1000)));
    expect(got.length).toBe(3);
    expect(got[0]).toEqual(small);
    expect(got[1]).toEqual(new Uint8Array(0));
    expect(got[2]).toEqual(big);
    expect(r.pending).toBe(0);
    expect(r.held).toBe(0);
  });

  test("a header claiming a large frame holds memory for what arrived, not what it claims", () => {
    const r = new FrameReader(16 * 1024 * 1024);
    // 16 MiB announced, 10 bytes sent.
    r.push(new Uint8Array([1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    expect(r.pending).toBe(14);
    expect(r.held).toBeLessThanOrEqual(64 * 1024);
    // 1 MiB more: held grows by doubling, at most twice what arrived.
    for (let i = 0; i < 16; i++) r.push(new Uint8Array(64 * 1024));
    expect(r.held).toBeLessThanOrEqual(2 * (1024 * 1024 + 10));
    expect(r.held).toBeGreaterThanOrEqual(1024 * 1024 + 10);
  });

  test("a length over the limit is refused as soon as the header arrives", () => {
    const r = new FrameReader(1024);
    const e = wireError(() => r.push(new Uint8Array([0, 0, 0x10, 0])));
    expect(e.message).toBe("frame.length: 4096 bytes, over the frame limit of 1024");
  });
});

describe("fuzz (seeded)", () => {
  test("random bytes: only WireError, never another exception", () => {
    const rand = prng(1234);
    for (let i = 0; i < 20_000; i++) {
      const b = new Uint8Array(Math.floor(rand() * 64));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
      try {
        codec.decodeBody(b);
      } catch (e) {
        if (!(e instanceof WireError)) throw new Error(`iteration ${i}: ${String(e)}`);
      }
    }
  });

  test("mutated valid frames: only WireError or a valid frame", () => {
    const rand = prng(99);
    const seeds = [
      body(
        codec.encode("PUB", {
          topic: "sensors.kitchen.temp",
          payload: new Uint8Array(40),
          seq: 12345,
        }),
      ),
      body(codec.encode("HELLO", { versions: ["macula/1", "macula/2"], relay: true })),
    ];
    for (let i = 0; i < 20_000; i++) {
      const b = seeds[i % seeds.length]!.slice();
      const edits = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < edits; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      const cut = rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
      try {
        const f = codec.decodeBody(cut);
        expect(typeof f.type).toBe("number");
      } catch (e) {
        if (!(e instanceof WireError)) throw new Error(`iteration ${i}: ${String(e)}`);
      }
    }
  });

  test("hostile nesting and huge declared sizes are refused without exhausting memory", () => {
    const deep = new Uint8Array(100_000).fill(0x81); // 100,000 nested one-element arrays
    expect(() => codec.decodeBody(deep)).toThrow(WireError);
    // An array claiming 2^32-1 items, a byte string claiming 4 GiB: both end early.
    expect(() => codec.decodeBody(new Uint8Array([0x9b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])))
      .toThrow(WireError);
    expect(() => codec.decodeBody(new Uint8Array([0x82, 0x0c, 0x5a, 0xff, 0xff, 0xff, 0xff])))
      .toThrow(WireError);
  });
});

describe("records, checks beyond the kind, and bodies without the length prefix", () => {
  const ITEM = [
    { name: "id", kind: "str", max: 8, valid: (v: string) => v.length > 0, want: "an id" },
    { name: "n", kind: "uint", max: 9 },
    { name: "note", kind: "str", max: 16, optional: true },
  ] as const;
  const LIST: FrameSpec = {
    type: 5,
    name: "LIST",
    fields: [{ name: "items", kind: "records", max: 3, fields: ITEM }],
  };
  const c = new Codec([LIST]);

  test("records round-trip as objects; an absent optional is null; encodeBody has no prefix", () => {
    const items = [{ id: "a", n: 1 }, { id: "b", n: 2, note: "hi" }];
    const frame = c.encode("LIST", { items });
    expect(c.encodeBody("LIST", { items })).toEqual(frame.subarray(4));
    expect(c.decodeBody(c.encodeBody("LIST", { items }))).toEqual({
      type: 5,
      name: "LIST",
      fields: { items: [{ id: "a", n: 1, note: null }, { id: "b", n: 2, note: "hi" }] },
    });
  });

  test("a bad record names the item and its field; `want` words replace the kind's", () => {
    const raw = (items: unknown) => c.decodeBody(c.encodeRaw([5, items]).subarray(4));
    expect(wireError(() => raw([["a", 10]])).message).toBe(
      "LIST.items: [0].n: 10 is over the limit of 9",
    );
    expect(wireError(() => raw([["a", 1], ["", 1]])).message).toBe(
      "LIST.items: [1].id: must be an id",
    );
    expect(wireError(() => raw([["a", 1, "x", 4]])).message).toBe(
      "LIST.items: [0]: 4 items, over 3",
    );
    expect(wireError(() => raw([1])).message).toBe("LIST.items: [0]: not an array");
    expect(wireError(() => raw([[], [], [], []])).message).toBe(
      "LIST.items: 4 items, over the limit of 3",
    );
    // The sender is checked the same way.
    expect(wireError(() => c.encode("LIST", { items: [{ id: "", n: 1 }] })).message).toBe(
      "LIST.items: [0].id: must be an id",
    );
  });

  test("checkField is the one checker: `want` for any invalid value, null for an absent optional", () => {
    const port = {
      name: "port",
      kind: "uint",
      max: 65535,
      valid: (v: number) => v >= 1,
      want: "a port",
    } as const;
    expect(checkField("x", port, 80)).toBe(80);
    expect(wireError(() => checkField("x", port, 0)).message).toBe("x.port: must be a port");
    expect(wireError(() => checkField("x", port, "80")).message).toBe("x.port: must be a port");
    expect(wireError(() => checkField("x", port, undefined)).message).toBe(
      "x.port: must be a port",
    );
    expect(checkField("x", { ...port, optional: true }, undefined)).toBe(null);
    expect(wireError(() => checkField("y", { name: "s", kind: "str", max: 2 }, "abc")).detail).toBe(
      "longer than 2 bytes",
    );
  });
});
