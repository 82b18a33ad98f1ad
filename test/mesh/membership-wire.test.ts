/**
 * Membership messages on the wire (lib/mesh/membership/wire.ts, lib/wire frames): every message
 * kind round-trips; a malformed one is a WireError naming the field; fuzzed input never throws
 * anything else. (What a record's signature covers, and what the edge refuses: the trust tests.)
 */
import { describe, expect, test } from "bun:test";
import { Directory } from "../../lib/mesh/membership/directory.ts";
import type { Msg } from "../../lib/mesh/membership/messages.ts";
import {
  decodeMembership,
  encodeMembership,
  membershipCodec,
  toMsg,
} from "../../lib/mesh/membership/wire.ts";
import { WireError } from "../../lib/wire/mod.ts";
import { fuzzDecoder } from "../helpers/fuzz.ts";

const dir = new Directory();
const A = dir.intern("a".repeat(52));
const B = dir.intern("b".repeat(52));
const meta = { realm: "acme", tags: ["gpu", "edge"], version: "0.1.0" };
// The form only (the signature is the edge's to check): a 44-byte Ed25519 SPKI, 64 bytes of sig.
const key = Uint8Array.from([
  ...[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00],
  ...new Array(32).fill(7),
]);
const proof = { key, sig: new Uint8Array(64).fill(9) };
const alive = { kind: 0, member: B, inc: 7, from: B, addr: "quic://127.0.0.1:5000", meta, proof };
const dead = { kind: 2, member: B, inc: 8, from: A };
const base = { realm: "acme", from: A };

const messages: Msg[] = [
  { ...base, t: "ping", seq: 1, target: B, piggy: [alive, dead] },
  { ...base, t: "ack", seq: 2, piggy: [] },
  { ...base, t: "nack", seq: 3 },
  { ...base, t: "ping-req", seq: 4, target: B, piggy: [dead] },
  { ...base, t: "sync", join: true, reply: true, digest: [1, 0xffffffff], members: [alive] },
  { ...base, t: "sync", join: false, reply: false, digest: [0, 0], members: [] },
  { ...base, t: "sync-reply", digest: [5, 6], members: [alive, dead] },
  { ...base, t: "gossip", piggy: [alive] },
];

describe("membership wire", () => {
  test("every kind of message round-trips, ids interned by node id", () => {
    for (const m of messages) {
      const bytes = encodeMembership(m, dir, "quic://127.0.0.1:4433");
      const other = new Directory();
      const d = decodeMembership(bytes);
      expect(d.fromId).toBe("a".repeat(52));
      expect(d.fromAddr).toBe("quic://127.0.0.1:4433");
      const msg = toMsg(d, d.updates, other);
      // Re-encoded from the other directory, the bytes are the same (deterministic encoding).
      expect(encodeMembership(msg, other, d.fromAddr)).toEqual(bytes);
      expect(msg.t).toBe(m.t);
    }
  });

  test("malformed messages are WireErrors naming the message and the field", () => {
    const bad = (arr: unknown[]) => {
      try {
        decodeMembership(membershipCodec.encodeRaw(arr).subarray(4));
      } catch (e) {
        expect(e).toBeInstanceOf(WireError);
        return (e as Error).message;
      }
      throw new Error("decoded");
    };
    const id = "a".repeat(52);
    expect(bad([3, "acme", id, "x"])).toBe("nack.seq: missing");
    expect(bad([3, "", id, "x", 1])).toBe("nack.realm: must be a realm");
    expect(bad([7, "acme", id, "x", [[0, id, 2 ** 32, id]]])).toBe(
      "gossip.updates: [0].inc: 4294967296 is over the limit of 4294967295",
    );
    expect(bad([7, "acme", id, "x", [[9, id, 1, id]]])).toBe(
      "gossip.updates: [0].kind: 9 is over the limit of 3",
    );
    expect(bad([7, "acme", id, "x", [[0, id, 1, id, "addr"]]])).toBe(
      "gossip.updates[0]: a record carries addr, realm, tags, version, key and sig together",
    );
    expect(bad([99, "acme"])).toBe("membership: unknown message type 99");
    expect(bad([9, "acme"])).toContain("frame type 9: unknown");
    expect(bad([7, "acme", id, "x", "not a list"])).toBe("gossip.updates: not an array");
  });

  test("fuzz: random bytes and mutated messages never throw anything but WireError", () => {
    const errors = fuzzDecoder(
      messages.map((m) => encodeMembership(m, dir, "quic://127.0.0.1:1")),
      decodeMembership,
      11,
    );
    expect(errors).toBeGreaterThan(5000);
  });
});
