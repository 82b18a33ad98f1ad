/**
 * Regressions: bugs the wire tests found in lib/, now fixed; each test fails if one comes back.
 *
 * 1. Integers ≥ 2^32 do not survive a round trip. `encodeFrame` writes them, correctly, as CBOR
 *    8-byte unsigned integers (0x1b); cbor-x's decoder returns those as `bigint`, and
 *    `check` (lib/wire/codec.ts) refuses anything but a `number`: "not an unsigned integer". So
 *    every id field (sid, id, LOST.count: up to 2^53 − 1 by the spec) breaks from 2^32 on,
 *    and the receiving node closes the session with PROTOCOL_VIOLATION. (Before the hand-written
 *    encoder, cbor-x wrote such numbers as float64, which decoded to a number.)
 *
 * 2. FWD at the field limits does not fit the bus codec's frame limit (16 MiB + 1024): a
 *    16 MiB payload plus `queues` (up to 256 × 64 bytes) is refused by `busCodec.encode`, which
 *    the router calls from inside a client's PUB: the publisher's session is closed.
 */
import { describe, expect, test } from "bun:test";
import {
  busCodec,
  MAX_DESTS,
  MAX_GROUPS,
  MAX_ID,
  MAX_PAYLOAD_LIMIT,
  MAX_RECORD_PROCS,
  MAX_RECORD_SUBS,
} from "../../lib/messaging/frames.ts";
import { type Frame } from "../../lib/wire/codec.ts";

const body = (f: Uint8Array) => f.subarray(4);

describe("found bugs", () => {
  test("uint fields from 2^32 up to 2^53 - 1 round-trip (ids, LOST.count)", () => {
    for (const id of [2 ** 32, 2 ** 40 + 3, MAX_ID]) {
      for (
        const [name, fields] of [
          ["PING", { id }],
          ["CANCEL", { id }],
          ["UNSUB", { sid: id }],
          ["LOST", { sid: 1, count: id }],
          ["CALL", { id, proc: "p", payload: new Uint8Array(0), timeout_ms: 1 }],
        ] as const
      ) {
        const wire = busCodec.encode(name, fields);
        expect((busCodec.decodeBody(body(wire)) as Frame).fields).toMatchObject(fields);
      }
    }
  });

  test("a FWD whose fields are within their limits can be encoded", () => {
    const fields = {
      topic: "t".repeat(256),
      payload: new Uint8Array(MAX_PAYLOAD_LIMIT),
      ttl: 255,
      dests: Array.from({ length: MAX_DESTS }, (_, i) => `${i}`.padEnd(16, "n")),
      groups: Array.from({ length: MAX_GROUPS }, (_, i) => ({
        node: `${i}`.padEnd(16, "n"),
        queue: `${i}`.padEnd(64, "q"),
      })),
    };
    const wire = busCodec.encode("FWD", fields);
    const back = (busCodec.decodeBody(body(wire)) as Frame).fields;
    expect(back.dests).toEqual(fields.dests);
    expect(back.groups).toEqual(fields.groups);
  });

  test("an INTEREST whose fields are within their limits can be encoded", () => {
    const fields = {
      origin: "o".repeat(52),
      version: Number.MAX_SAFE_INTEGER,
      hops: 255,
      rtt_us: 0xffffffff,
      subs: Array.from({ length: MAX_RECORD_SUBS }, (_, i) => ({
        pattern: `${i}`.padEnd(256, "p"),
        queue: `${i}`.padEnd(64, "q"),
      })),
      procs: Array.from({ length: MAX_RECORD_PROCS }, (_, i) => `${i}`.padEnd(256, "r")),
      key: new Uint8Array(128),
      sig: new Uint8Array(128),
    };
    // A frame far above what a node ever sends (its own records stay within 48 KiB) still fits
    // the codec's bound, so a peer's largest legal record is decoded, then judged by the router.
    const wire = busCodec.encode("INTEREST", fields);
    expect((busCodec.decodeBody(body(wire)) as Frame).fields.subs).toEqual(fields.subs);
  });
});
