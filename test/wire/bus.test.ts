/**
 * The bus frames (lib/messaging/frames.ts) and the session's OPEN frame on the wire: round trips,
 * optional fields, limits naming frame.field, and seeded fuzzing of decodeBody and FrameReader.
 * Values here stay below 2^32 for uint fields; larger ids are in found-bugs.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { Decoder } from "cbor-x/decode";
import { BUS_FRAMES, busCodec, MAX_PAYLOAD_LIMIT } from "../../lib/messaging/frames.ts";
import { SESSION_FRAMES, sessionCodec } from "../../lib/peer/frames.ts";
import {
  type Codec,
  type FieldSpec,
  FIRST_IGNORABLE_TYPE,
  type Frame,
  FrameReader,
  WireError,
} from "../../lib/wire/codec.ts";
import { prng } from "../helpers/quic.ts";

const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });
const body = (f: Uint8Array) => f.subarray(4);
const bytes = (n: number, fill = 0xab) => new Uint8Array(n).fill(fill);

function wireError(fn: () => unknown): WireError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WireError);
    return e as WireError;
  }
  throw new Error("expected a WireError");
}

/** A W3C trace context (docs/tracing.md), as the frames that carry a message or a call hold it. */
const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TS = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

/** One valid example of every bus frame, every field present. */
const EXAMPLES: Record<string, Record<string, unknown>> = {
  INFO: { node: "n".repeat(52), max_payload: 1024 * 1024 },
  SUB: { sid: 1, pattern: "orders.*.>", queue: "workers" },
  UNSUB: { sid: 1 },
  PUB: { topic: "orders.eu.new", payload: bytes(10), traceparent: TP, tracestate: TS },
  MSG: { sid: 7, topic: "orders.eu.new", payload: bytes(0), traceparent: TP, tracestate: TS },
  FWD: {
    topic: "a.b",
    payload: bytes(300),
    ttl: 31,
    dests: ["nodeAAAAAAAAAAAA", "nodeBBBBBBBBBBBB"],
    groups: [{ node: "nodeBBBBBBBBBBBB", queue: "workers" }],
    traceparent: TP,
    tracestate: TS,
  },
  REG: { proc: "svc.echo" },
  UNREG: { proc: "svc.echo" },
  CALL: {
    id: 65536,
    proc: "svc.echo",
    payload: bytes(24),
    timeout_ms: 86_400_000,
    strategy: "round-robin",
    to: "nodeAAAAAAAAAAAA",
    ttl: 32,
    traceparent: TP,
    tracestate: TS,
  },
  REPLY: { id: 65536, payload: bytes(3) },
  FAIL: { id: 4, code: 255, message: "handler: é😀" },
  CANCEL: { id: 4, expired: true },
  PING: { id: 2 ** 32 - 1 },
  PONG: { id: 0 },
  LOST: { sid: 3, count: 1000 },
  ERROR: { code: "duplicate_sid", message: "SUB: sid 1 is in use", sid: 1, proc: "math.add" },
  RCVD: { count: 985 },
  RETIRE: {},
  INTEREST: {
    origin: "n".repeat(52),
    version: 1_764_000_000_000_001,
    hops: 3,
    rtt_us: 4200,
    subs: [{ pattern: "orders.>", queue: "audit" }, { pattern: "jobs.*", queue: "workers" }],
    procs: ["svc.echo"],
    key: bytes(44),
    sig: bytes(64),
  },
};

/** The bus frame types, as docs/wire-protocol.md lists them. */
const TYPES: Record<string, number> = {
  INFO: 32,
  SUB: 33,
  UNSUB: 34,
  PUB: 35,
  MSG: 36,
  FWD: 37,
  REG: 38,
  UNREG: 39,
  CALL: 40,
  REPLY: 41,
  FAIL: 42,
  CANCEL: 43,
  PING: 44,
  PONG: 45,
  LOST: 46,
  ERROR: 47,
  RCVD: 48,
  INTEREST: 49,
  RETIRE: 50,
};

/** A value one step over a field's limit (or of the wrong kind where a limit cannot be passed). */
function overLimit(f: FieldSpec): { value: unknown; detail: RegExp } {
  switch (f.kind) {
    case "uint":
      return f.max < Number.MAX_SAFE_INTEGER
        ? { value: f.max + 1, detail: new RegExp(`^${f.max + 1} is over the limit of ${f.max}$`) }
        : { value: 2 ** 53, detail: /^not an unsigned integer$/ };
    case "str":
      // Multi-byte characters: the limit is in UTF-8 bytes, not characters.
      return {
        value: "é".repeat(Math.floor(f.max / 2)) + "x".repeat((f.max % 2) + 1),
        detail: new RegExp(`^longer than ${f.max} bytes$`),
      };
    case "bytes":
      return {
        value: new Uint8Array(f.max + 1),
        detail: new RegExp(`^${f.max + 1} bytes, over the limit of ${f.max}$`),
      };
    case "bool":
      return { value: 1, detail: /^not a boolean$/ };
    case "strs":
    case "records":
      return {
        value: Array.from({ length: f.max + 1 }, () => f.kind === "strs" ? "q" : []),
        detail: new RegExp(`^${f.max + 1} items, over the limit of ${f.max}$`),
      };
  }
}

function wrongKind(f: FieldSpec): unknown {
  return f.kind === "str" || f.kind === "strs" ? 5 : "five";
}

describe("bus frames", () => {
  test("the frame table: types 32–50, every one with an example", () => {
    expect(Object.fromEntries(BUS_FRAMES.map((s) => [s.name, s.type]))).toEqual(TYPES);
    expect(Object.keys(EXAMPLES).sort()).toEqual(Object.keys(TYPES).sort());
    for (const s of BUS_FRAMES) expect(s.type).toBeLessThan(FIRST_IGNORABLE_TYPE);
  });

  test("every frame type round-trips, field for field", () => {
    for (const [name, fields] of Object.entries(EXAMPLES)) {
      const wire = busCodec.encode(name, fields);
      expect(new DataView(wire.buffer).getUint32(0)).toBe(wire.length - 4);
      const raw = decoder.decode(body(wire)) as unknown[];
      expect(raw[0]).toBe(TYPES[name]);
      expect(raw.length).toBe(1 + Object.keys(fields).length);
      expect(busCodec.decodeBody(body(wire))).toEqual({ type: TYPES[name]!, name, fields });
      // Deterministic: the same frame from fields given in another order.
      const reversed = Object.fromEntries(Object.entries(fields).reverse());
      expect(busCodec.encode(name, reversed)).toEqual(wire);
    }
  });

  test("trailing optional fields are left out on the wire and decode as null", () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ["SUB", { sid: 9, pattern: ">" }, "queue"],
      ["CALL", { id: 1, proc: "p", payload: bytes(1), timeout_ms: 0, strategy: "nearest" }, "to"],
      ["ERROR", { code: "bad_topic", message: "x", sid: 4 }, "proc"],
      // Untraced: a message or call is the same bytes as before the trace context existed.
      ["PUB", { topic: "t", payload: bytes(1) }, "traceparent"],
      ["MSG", { sid: 1, topic: "t", payload: bytes(1) }, "traceparent"],
      ["FWD", { topic: "t", payload: bytes(1), ttl: 3, dests: ["d"], groups: [] }, "traceparent"],
      [
        "CALL",
        {
          id: 1,
          proc: "p",
          payload: bytes(1),
          timeout_ms: 0,
          strategy: "nearest",
          to: "n",
          ttl: 2,
        },
        "traceparent",
      ],
      ["CANCEL", { id: 1 }, "expired"],
    ];
    for (const [name, fields, optional] of cases) {
      for (const absent of [undefined, null]) {
        const wire = busCodec.encode(name, { ...fields, [optional]: absent });
        const raw = decoder.decode(body(wire)) as unknown[];
        expect(raw.length).toBe(1 + Object.keys(fields).length); // not even a null
        const after = BUS_FRAMES.find((x) => x.name === name)!.fields.map((x) => x.name);
        const rest = Object.fromEntries(
          after.slice(after.indexOf(optional)).map((x) => [x, null]), // it and the optionals after it
        );
        expect(busCodec.decodeBody(body(wire))).toEqual({
          type: TYPES[name]!,
          name,
          fields: { ...fields, ...rest },
        });
      }
      // An explicit CBOR null in that position decodes the same.
      const withNull = busCodec.encodeRaw([TYPES[name], ...Object.values(fields), null]);
      expect((busCodec.decodeBody(body(withNull)) as Frame).fields[optional]).toBeNull();
    }
  });

  test("values exactly at every limit are accepted", () => {
    for (const spec of BUS_FRAMES) {
      const fields: Record<string, unknown> = { ...EXAMPLES[spec.name] };
      for (const f of spec.fields) {
        // Ids up to 2^53 - 1 are in found-bugs.test.ts (8-byte integers decode as bigint).
        if (f.kind === "uint") fields[f.name] = Math.min(f.max, 2 ** 32 - 1);
        if (f.kind === "str") fields[f.name] = "é".repeat(f.max / 2) + "x".repeat(f.max % 2);
        if (f.kind === "bytes" && f.max <= 65536) fields[f.name] = new Uint8Array(f.max);
        if (f.kind === "strs") {
          fields[f.name] = Array.from({ length: 3 }, () => "q".repeat(f.itemMax!));
        }
      }
      if (spec.name === "CALL" || spec.name === "MSG") fields.payload = bytes(1);
      expect(busCodec.decodeBody(body(busCodec.encode(spec.name, fields)))).toEqual({
        type: spec.type,
        name: spec.name,
        fields,
      });
    }
  });

  test("a 16 MiB payload (the protocol limit) round-trips; one byte more is refused", () => {
    const big = new Uint8Array(MAX_PAYLOAD_LIMIT);
    big[MAX_PAYLOAD_LIMIT - 1] = 1;
    const f = busCodec.decodeBody(body(busCodec.encode("PUB", { topic: "t", payload: big })));
    expect((f as Frame).fields.payload).toEqual(big);
    expect(
      wireError(() =>
        busCodec.encode("PUB", { topic: "t", payload: new Uint8Array(MAX_PAYLOAD_LIMIT + 1) })
      ).message,
    ).toBe(`PUB.payload: ${MAX_PAYLOAD_LIMIT + 1} bytes, over the limit of ${MAX_PAYLOAD_LIMIT}`);
  });

  test("every limit, wrong kind and missing field is refused on encode and on decode, naming frame.field", () => {
    let checked = 0;
    for (const spec of BUS_FRAMES) {
      spec.fields.forEach((f, i) => {
        const good = EXAMPLES[spec.name]!;
        const bad: { value: unknown; detail: RegExp }[] = [
          overLimit(f),
          { value: wrongKind(f), detail: /^not an? / },
        ];
        if (!f.optional) bad.push({ value: null, detail: /^missing$/ });
        if (f.kind === "uint") bad.push({ value: 1.5, detail: /^not an unsigned integer$/ });
        if (f.kind === "uint") bad.push({ value: -1, detail: /^not an unsigned integer$/ });
        if (f.kind === "strs") {
          bad.push({
            value: ["ok", "x".repeat(f.itemMax! + 1)],
            detail: new RegExp(`^an item is longer than ${f.itemMax} bytes$`),
          });
          bad.push({ value: ["ok", 5], detail: /^an item is not a text string$/ });
        }
        for (const { value, detail } of bad) {
          const fields = { ...good, [f.name]: value };
          const e1 = wireError(() => busCodec.encode(spec.name, fields));
          expect([e1.frame, e1.field]).toEqual([spec.name, f.name]);
          expect(e1.message.startsWith(`${spec.name}.${f.name}: `)).toBe(true);
          expect(e1.message.slice(spec.name.length + f.name.length + 3)).toMatch(detail);
          // The same values from a hostile peer (encoded unchecked) fail the decoder alike.
          // (Records go as arrays of their fields, as the encoder sends them.)
          const raw = (g: (typeof spec.fields)[number]) => {
            const v = fields[g.name] ?? null;
            return g.kind === "records" && Array.isArray(v)
              ? v.map((r) =>
                typeof r === "object" && r !== null
                  ? g.fields!.map((h) => (r as Record<string, unknown>)[h.name] ?? null)
                  : r
              )
              : v;
          };
          const arr: unknown[] = [spec.type, ...spec.fields.map(raw)];
          if (value === null) arr.length = i + 1; // a missing field: the array ends early
          const e2 = wireError(() => busCodec.decodeBody(body(busCodec.encodeRaw(arr))));
          expect(e2.message).toBe(e1.message);
          checked++;
        }
      });
    }
    expect(checked).toBeGreaterThan(80);
  });

  test("newer peers: fields past the known ones are ignored; types 51–63 are errors, ≥ 0x40 skipped", () => {
    const extra = busCodec.encodeRaw([44, 5, "future", [1, 2], { k: 1 }]);
    expect(busCodec.decodeBody(body(extra))).toEqual({
      type: 44,
      name: "PING",
      fields: { id: 5 },
    });
    for (const t of [0, 1, 4, 16, 31, 51, 63]) {
      const e = wireError(() => busCodec.decodeBody(body(busCodec.encodeRaw([t, 1]))));
      expect(e.message).toBe(`frame type ${t}: unknown, and below 0x40 so it may not be ignored`);
    }
    for (const t of [0x40, 0x41, 0xff, 0xffff]) {
      expect(busCodec.decodeBody(body(busCodec.encodeRaw([t, "x"])))).toEqual({
        type: t,
        unknown: true,
      });
    }
    expect(wireError(() => busCodec.decodeBody(body(busCodec.encodeRaw([0x10000])))).field).toBe(
      "type",
    );
    expect(wireError(() => busCodec.decodeBody(body(busCodec.encodeRaw([])))).message).toBe(
      "frame: not a CBOR array [type, …]",
    );
    // Exactly one CBOR item: a trailing byte makes the frame malformed.
    const ping = body(busCodec.encode("PING", { id: 1 }));
    const trailing = new Uint8Array([...ping, 0x00]);
    expect(wireError(() => busCodec.decodeBody(trailing)).message).toContain("not valid CBOR");
    // Receivers are lenient about form: an integer-valued float64 in a uint field is accepted.
    const floatId = new Uint8Array([0x82, 0x18, 44, 0xfb, 0x40, 0x14, 0, 0, 0, 0, 0, 0]);
    expect(busCodec.decodeBody(floatId)).toEqual({ type: 44, name: "PING", fields: { id: 5 } });
    // Session frames are not bus frames, and bus frames are not session frames.
    expect(() => busCodec.decodeBody(body(sessionCodec.encode("OPEN", { channel: "client" }))))
      .toThrow(WireError);
    expect(() => sessionCodec.decodeBody(body(busCodec.encode("PING", { id: 1 })))).toThrow(
      WireError,
    );
  });
});

describe("session OPEN frame", () => {
  test("type 4, one field: the channel name", () => {
    const spec = SESSION_FRAMES.find((s) => s.name === "OPEN")!;
    expect(spec).toEqual({
      type: 4,
      name: "OPEN",
      fields: [{ name: "channel", kind: "str", max: 32 }],
    });
    for (const channel of ["client", "route", "", "é".repeat(16), "x".repeat(32)]) {
      const wire = sessionCodec.encode("OPEN", { channel });
      expect(decoder.decode(body(wire))).toEqual([4, channel]);
      expect(sessionCodec.decodeBody(body(wire))).toEqual({
        type: 4,
        name: "OPEN",
        fields: { channel },
      });
    }
    expect([...sessionCodec.encode("OPEN", { channel: "route" })]).toEqual([
      0,
      0,
      0,
      8,
      0x82,
      0x04,
      0x65,
      ...new TextEncoder().encode("route"),
    ]);
  });

  test("the channel limit is 32 UTF-8 bytes; missing or wrong kinds are refused", () => {
    expect(wireError(() => sessionCodec.encode("OPEN", { channel: "é".repeat(16) + "x" })).message)
      .toBe("OPEN.channel: longer than 32 bytes");
    expect(
      wireError(() => sessionCodec.decodeBody(body(sessionCodec.encodeRaw([4, "x".repeat(33)]))))
        .message,
    ).toBe("OPEN.channel: longer than 32 bytes");
    expect(wireError(() => sessionCodec.decodeBody(body(sessionCodec.encodeRaw([4])))).message)
      .toBe("OPEN.channel: missing");
    expect(
      wireError(() => sessionCodec.decodeBody(body(sessionCodec.encodeRaw([4, bytes(3)])))).message,
    ).toBe("OPEN.channel: not a text string");
    expect(
      sessionCodec.decodeBody(body(sessionCodec.encodeRaw([4, "client", "future field"]))),
    ).toEqual({ type: 4, name: "OPEN", fields: { channel: "client" } });
  });
});

// ------------------------------------------------------------------ fuzz

type Outcome = "frame" | "unknown" | "error";

/** Decodes; anything but a frame, an unknown-type marker or a WireError fails the test. */
function classify(codec: Codec, b: Uint8Array, what: string): Outcome {
  let f: ReturnType<Codec["decodeBody"]>;
  try {
    f = codec.decodeBody(b);
  } catch (e) {
    if (e instanceof WireError) return "error";
    throw new Error(`${what}: ${String(e)} for ${Buffer.from(b).toString("hex")}`);
  }
  if ("unknown" in f) {
    expect(f.type).toBeGreaterThanOrEqual(FIRST_IGNORABLE_TYPE);
    return "unknown";
  }
  // A decoded frame is fully valid: encoding its fields again succeeds and decodes the same.
  const again = codec.decodeBody(body(codec.encode(f.name, f.fields)));
  expect(again).toEqual(f);
  return "frame";
}

function randomBody(rand: () => number): Uint8Array {
  const b = new Uint8Array(Math.floor(rand() * 96));
  for (let j = 0; j < b.length; j++) b[j] = Math.floor(rand() * 256);
  // Often start like a frame: an array head, then a plausible type.
  if (b.length > 1 && rand() < 0.5) {
    b[0] = 0x80 | Math.floor(rand() * 6);
    b[1] = rand() < 0.5 ? 0x18 : Math.floor(rand() * 24);
    if (b[1] === 0x18 && b.length > 2) b[2] = 32 + Math.floor(rand() * 40);
  }
  return b;
}

function mutate(rand: () => number, seed: Uint8Array): Uint8Array {
  const b = seed.slice();
  const edits = 1 + Math.floor(rand() * 4);
  for (let k = 0; k < edits; k++) {
    const at = Math.floor(rand() * b.length);
    const r = rand();
    if (r < 0.6) b[at] = Math.floor(rand() * 256);
    else if (r < 0.8) b[at] = b[at]! ^ (1 << Math.floor(rand() * 8));
    else {b[at] = [
        0x00,
        0x17,
        0x18,
        0x1b,
        0x5b,
        0x7b,
        0x9b,
        0xf6,
        0xf7,
        0xff,
      ][Math.floor(rand() * 10)]!;}
  }
  return rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
}

function fuzzRandom(codec: Codec, seed: number): Record<Outcome, number> {
  const rand = prng(seed);
  const n: Record<Outcome, number> = { frame: 0, unknown: 0, error: 0 };
  for (let i = 0; i < 20_000; i++) n[classify(codec, randomBody(rand), `random ${i}`)]++;
  return n;
}

function fuzzMutated(codec: Codec, seeds: Uint8Array[], seed: number): Record<Outcome, number> {
  const rand = prng(seed);
  const n: Record<Outcome, number> = { frame: 0, unknown: 0, error: 0 };
  for (let i = 0; i < 20_000; i++) {
    n[classify(codec, mutate(rand, seeds[i % seeds.length]!), `mutated ${i}`)]++;
  }
  return n;
}

const busSeeds = Object.entries(EXAMPLES).map(([name, f]) => body(busCodec.encode(name, f)));
const sessionSeeds = [
  sessionCodec.encode("OPEN", { channel: "client" }),
  sessionCodec.encode("OPEN", { channel: "route" }),
  sessionCodec.encode("GOAWAY", { reason: "node shutting down" }),
  sessionCodec.encode("HELLO", { versions: ["macula/1"], node: "n".repeat(52), realm: "dev" }),
  sessionCodec.encode("REQ", { method: "m", payload: bytes(5), timeout_ms: 5000 }),
].map(body);

describe("fuzz (seeded)", () => {
  test("bus: 20,000 random bodies yield a frame, an unknown type or a WireError", () => {
    const n = fuzzRandom(busCodec, 4242);
    expect(n.error).toBeGreaterThan(10_000);
    expect(n.frame + n.unknown).toBeGreaterThan(0);
  });

  test("bus: 20,000 mutated or truncated valid frames yield a frame, an unknown type or a WireError", () => {
    const n = fuzzMutated(busCodec, busSeeds, 31337);
    expect(n.frame).toBeGreaterThan(1000); // many mutations keep a valid frame
    expect(n.error).toBeGreaterThan(1000);
  });

  test("session: 20,000 random bodies and 20,000 mutated OPEN/GOAWAY/HELLO/REQ frames", () => {
    const r = fuzzRandom(sessionCodec, 808);
    expect(r.error).toBeGreaterThan(10_000);
    const m = fuzzMutated(sessionCodec, sessionSeeds, 909);
    expect(m.frame).toBeGreaterThan(1000);
    expect(m.error).toBeGreaterThan(1000);
  });

  test("FrameReader: a bus stream cut into random chunks gives back the same frames", () => {
    const rand = prng(2718);
    const frames = Object.entries(EXAMPLES).map(([name, f]) => busCodec.encode(name, f));
    const stream = new Uint8Array(frames.reduce((s, f) => s + f.length, 0));
    let o = 0;
    for (const f of frames) {
      stream.set(f, o);
      o += f.length;
    }
    for (let i = 0; i < 500; i++) {
      const r = new FrameReader(busCodec.maxFrame);
      const got: Uint8Array[] = [];
      for (let at = 0; at < stream.length;) {
        const len = 1 + Math.floor(rand() * (rand() < 0.5 ? 8 : 200));
        got.push(...r.push(stream.slice(at, at + len)));
        at += len;
        expect(r.pending).toBeLessThan(busCodec.maxFrame + 4);
      }
      expect(r.pending).toBe(0);
      expect(got.map((b) => (busCodec.decodeBody(b) as Frame).name)).toEqual(Object.keys(EXAMPLES));
    }
  });

  test("FrameReader: 20,000 mutated streams: only WireError, and never more held than one frame", () => {
    const rand = prng(1618);
    const max = 4096;
    const frames = Object.entries(EXAMPLES).map(([name, f]) => busCodec.encode(name, f));
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      const r = new FrameReader(max);
      const parts = Array.from(
        { length: 1 + Math.floor(rand() * 4) },
        () => mutate(rand, frames[Math.floor(rand() * frames.length)]!),
      );
      try {
        for (const p of parts) {
          for (let at = 0; at < p.length;) {
            const len = 1 + Math.floor(rand() * 16);
            for (const b of r.push(p.slice(at, at + len))) {
              expect(b.length).toBeLessThanOrEqual(max);
              classify(busCodec, b, `stream ${i}`);
            }
            at += len;
            // Held bytes: at most a header plus one frame's body.
            expect(r.pending).toBeLessThan(max + 4);
          }
        }
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        expect(e.message).toMatch(/^frame\.length: \d+ bytes, over the frame limit of 4096$/);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(1000);
  });

  test("a huge declared length is refused from the 4 header bytes alone", () => {
    for (const codec of [busCodec, sessionCodec]) {
      for (const len of [codec.maxFrame + 1, 0x7fffffff, 0xffffffff]) {
        const r = new FrameReader(codec.maxFrame);
        const head = new Uint8Array([
          len >>> 24,
          (len >>> 16) & 0xff,
          (len >>> 8) & 0xff,
          len & 0xff,
        ]);
        // Header split across two pushes: still refused as soon as the 4th byte arrives.
        expect(r.push(head.subarray(0, 3))).toEqual([]);
        expect(r.pending).toBe(3);
        const e = wireError(() => r.push(head.subarray(3)));
        expect(e.message).toBe(
          `frame.length: ${len} bytes, over the frame limit of ${codec.maxFrame}`,
        );
      }
      // At the limit it waits, holding only what arrived (no allocation of the declared size).
      const r = new FrameReader(codec.maxFrame);
      const m = codec.maxFrame;
      expect(
        r.push(new Uint8Array([m >>> 24, (m >>> 16) & 0xff, (m >>> 8) & 0xff, m & 0xff, 1, 2])),
      )
        .toEqual([]);
      expect(r.pending).toBe(6);
    }
  });

  test("bodies declaring huge items inside are refused without allocating them", () => {
    const cases = [
      [0x83, 0x18, 35, 0x61, 0x74, 0x5a, 0xff, 0xff, 0xff, 0xff], // PUB payload of 4 GiB
      [0x83, 0x18, 35, 0x7a, 0xff, 0xff, 0xff, 0xff], // PUB topic of 4 GiB
      [0x84, 0x18, 37, 0x61, 0x74, 0x40, 0x9a, 0xff, 0xff, 0xff, 0xff], // FWD ttl as an array of 2^32-1 items
      [0x84, 0x18, 37, 0x61, 0x74, 0x40, 0x9b, 0, 0, 0, 1, 0, 0, 0, 0], // 2^32 items
      [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // an array of 2^64-1 items
      [0x81, 0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // type 2^64-1
    ];
    for (const c of cases) {
      const before = process.memoryUsage().rss;
      expect(() => busCodec.decodeBody(new Uint8Array(c))).toThrow(WireError);
      expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024);
    }
    expect(() => busCodec.decodeBody(new Uint8Array(100_000).fill(0x81))).toThrow(WireError);
  });
});
