/**
 * DHT messages on the wire (lib/mesh/dht/wire.ts): every message kind round-trips; a malformed one
 * is a WireError naming the message and the field; fuzzed input never throws anything else.
 */
import { describe, expect, test } from "bun:test";
import type { DhtMsg, DhtRecord } from "../../lib/mesh/dht/mod.ts";
import { decodeDht, dhtCodec, encodeDht } from "../../lib/mesh/dht/mod.ts";
import { WireError } from "../../lib/wire/mod.ts";
import { fuzzDecoder } from "../helpers/fuzz.ts";

const id = (b: number) => new Uint8Array(32).fill(b);
const head = { realm: "acme", from: id(1), mode: "server" as const, rid: 7 };
const record: DhtRecord = {
  key: id(2),
  value: new TextEncoder().encode("hello"),
  publisher: id(3),
  seq: 4,
  ttlMs: 60_000,
  pub: new Uint8Array(44).fill(5),
  sig: new Uint8Array(64).fill(6),
};
const contacts = [{ id: id(8), addr: "quic://127.0.0.1:4000" }, {
  id: id(9),
  addr: "quic://[::1]:4001",
}];

const messages: DhtMsg[] = [
  { ...head, t: "ping" },
  { ...head, mode: "client", t: "pong" },
  { ...head, t: "find_node", target: id(4) },
  { ...head, t: "nodes", contacts },
  { ...head, t: "nodes", contacts: [] },
  { ...head, t: "find_value", key: id(2) },
  { ...head, t: "value", records: [record], contacts: [] },
  { ...head, t: "value", records: [], contacts },
  { ...head, t: "store", record },
  { ...head, t: "stored", refused: null },
  { ...head, t: "stored", refused: "per_publisher" },
];

const bad = (arr: unknown[]) => {
  try {
    decodeDht(dhtCodec.encodeRaw(arr).subarray(4));
    return "decoded";
  } catch (e) {
    if (!(e instanceof WireError)) throw e;
    return e.message;
  }
};

describe("DHT messages on the wire", () => {
  test("every kind round-trips", () => {
    for (const m of messages) expect(decodeDht(encodeDht(m))).toEqual(m);
  });

  test("malformed messages name the message and the field", () => {
    const h = ["acme", id(1), 0, 7];
    expect(bad([3, ...h, new Uint8Array(31)])).toBe("find_node.target: must be 32 bytes");
    expect(bad([1, "acme", id(1), 2, 7])).toBe("ping.mode: 2 is over the limit of 1");
    expect(bad([1, "no realm!", id(1), 0, 7])).toBe("ping.realm: must be a realm");
    expect(bad([4, ...h, [[id(8), ""]]])).toBe(
      "nodes.contacts: [0].addr: must be an address of 1-256 bytes",
    );
    expect(bad([7, ...h, []])).toBe("store.record: must be one record");
    expect(bad([8, ...h, "made_up"])).toBe(
      "stored.refused: must be one of malformed, too_large, bad_signature, stale, per_publisher, full",
    );
    const rec = [
      id(2),
      new Uint8Array(5000),
      id(3),
      1,
      1000,
      new Uint8Array(44),
      new Uint8Array(64),
    ];
    expect(bad([6, ...h, [rec], []])).toBe(
      "value.records: [0].value: 5000 bytes, over the limit of 4096",
    );
    expect(bad([4, ...h, new Array(65).fill([id(8), "quic://x:1"])])).toBe(
      "nodes.contacts: 65 items, over the limit of 64",
    );
    expect(bad([99, ...h])).toContain("unknown");
  });

  test("what a node keeps holds its own bytes, never the peer's message; oversize is refused", () => {
    // Junk after the fields is ignored at decode (a later version's fields): it must not be
    // kept alive by the 32-byte views a node stores.
    const padded = dhtCodec.encodeRaw([
      7,
      "acme",
      id(1),
      0,
      7,
      [[id(2), new Uint8Array(5), id(3), 1, 1000, new Uint8Array(44), new Uint8Array(64)]],
      new Uint8Array(200_000),
    ]).subarray(4);
    const m = decodeDht(padded) as Extract<DhtMsg, { t: "store" }>;
    for (const b of [m.from, m.record.key, m.record.value, m.record.publisher, m.record.sig]) {
      expect(b.buffer.byteLength).toBe(b.length);
    }
    const n = decodeDht(encodeDht({ ...head, t: "nodes", contacts })) as Extract<
      DhtMsg,
      { t: "nodes" }
    >;
    expect(n.contacts[0]!.id.buffer.byteLength).toBe(32);
    expect(bad([1, ...["acme", id(1), 0, 7], new Uint8Array(300 * 1024)])).toMatch(
      /^dht: 3\d{5} bytes, over the limit of 262144$/,
    );
  });

  test("fuzz: random bytes and mutated messages never throw anything but WireError", () => {
    const errors = fuzzDecoder(messages.map(encodeDht), decodeDht, 17);
    expect(errors).toBeGreaterThan(5000); // most mutations are caught, none crash
  });
});
