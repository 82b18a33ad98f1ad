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
import { busCodec, MAX_ID, MAX_PAYLOAD_LIMIT } from "../../lib/messaging/frames.ts";
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
      queues: Array.from({ length: 256 }, (_, i) => `${i}`.padEnd(64, "q")),
    };
    const wire = busCodec.encode("FWD", fields);
    expect((busCodec.decodeBody(body(wire)) as Frame).fields.queues).toEqual(fields.queues);
  });
});
