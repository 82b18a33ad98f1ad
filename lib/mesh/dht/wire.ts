/**
 * DHT messages on the wire (docs/dht.md, "On the wire"): one lib/wire frame per message, a CBOR
 * array `[type, field…]` checked field by field at decode, like every frame. Real nodes carry
 * them as `dht.msg` requests (lib/node/dht.ts): a request's answer is the answer message.
 *
 * ```
 * ping        [1, realm, from, mode, rid]
 * pong        [2, realm, from, mode, rid]
 * find_node   [3, realm, from, mode, rid, target]
 * nodes       [4, realm, from, mode, rid, contacts]
 * find_value  [5, realm, from, mode, rid, key]
 * value       [6, realm, from, mode, rid, records, contacts]
 * store       [7, realm, from, mode, rid, [record]]
 * stored      [8, realm, from, mode, rid, refused?]
 * contact     [id, addr]
 * record      [key, value, publisher, seq, ttl_ms, pub, sig]
 * ```
 *
 * `from`, `target`, `key`, `id` and `publisher` are 32 bytes; `mode` 0 (server) or 1 (client);
 * `addr` a node's address as its membership record has it. Decoding checks the form; a record's
 * signature is the core's to check (on every store and read).
 */
import { realmProblem } from "../../identity/mod.ts";
import { Codec, type FieldSpec, type FrameSpec, WireError } from "../../wire/mod.ts";
import type { DhtMsg, WireContact } from "./dht.ts";
import { type DhtRecord, RECORD_LIMITS, type Refusal } from "./records.ts";

/** Contacts one answer may carry (the core hands out `k`, 20 by default). */
export const MAX_CONTACTS = 64;

const id32 = (name: string): FieldSpec =>
  ({
    name,
    kind: "bytes",
    max: 32,
    valid: (b: Uint8Array) => b.length === 32,
    want: "32 bytes",
  }) as FieldSpec;

const CONTACT: readonly FieldSpec[] = [
  id32("id"),
  {
    name: "addr",
    kind: "str",
    max: 256,
    valid: (v: string) => v.length > 0,
    want: "an address of 1-256 bytes",
  } as FieldSpec,
];

const RECORD: readonly FieldSpec[] = [
  id32("key"),
  { name: "value", kind: "bytes", max: RECORD_LIMITS.maxValueBytes },
  id32("publisher"),
  { name: "seq", kind: "uint", max: Number.MAX_SAFE_INTEGER },
  {
    name: "ttl_ms",
    kind: "uint",
    max: RECORD_LIMITS.maxTtlMs,
    valid: (v: number) => v >= 1,
    want: `a ttl from 1 to ${RECORD_LIMITS.maxTtlMs} ms`,
  } as FieldSpec,
  { name: "pub", kind: "bytes", max: 128 },
  { name: "sig", kind: "bytes", max: 128 },
];

const REFUSALS: readonly Refusal[] = [
  "malformed",
  "too_large",
  "bad_signature",
  "stale",
  "per_publisher",
  "full",
];

const HEAD: readonly FieldSpec[] = [
  {
    name: "realm",
    kind: "str",
    max: 128,
    valid: (v: string) => !realmProblem(v),
    want: "a realm",
  } as FieldSpec,
  id32("from"),
  { name: "mode", kind: "uint", max: 1 },
  { name: "rid", kind: "uint", max: Number.MAX_SAFE_INTEGER },
];
const contacts = { name: "contacts", kind: "records", max: MAX_CONTACTS, fields: CONTACT };

/** The DHT frames (their own type space: every type must be understood). */
export const DHT_FRAMES: readonly FrameSpec[] = [
  { type: 1, name: "ping", fields: HEAD },
  { type: 2, name: "pong", fields: HEAD },
  { type: 3, name: "find_node", fields: [...HEAD, id32("target")] },
  { type: 4, name: "nodes", fields: [...HEAD, contacts as FieldSpec] },
  { type: 5, name: "find_value", fields: [...HEAD, id32("key")] },
  {
    type: 6,
    name: "value",
    fields: [
      ...HEAD,
      { name: "records", kind: "records", max: RECORD_LIMITS.perKeyAnswer, fields: RECORD },
      contacts as FieldSpec,
    ],
  },
  {
    type: 7,
    name: "store",
    // One record (a records field of at most one; none is refused at decode).
    fields: [...HEAD, { name: "record", kind: "records", max: 1, fields: RECORD }],
  },
  {
    type: 8,
    name: "stored",
    fields: [...HEAD, {
      name: "refused",
      kind: "str",
      max: 32,
      optional: true,
      valid: (v: string) => (REFUSALS as readonly string[]).includes(v),
      want: `one of ${REFUSALS.join(", ")}`,
    } as FieldSpec],
  },
];

/** A value plus its contacts and the frame's overhead fit well inside this. */
export const dhtCodec = new Codec(DHT_FRAMES, 256 * 1024);

const toWireRecord = (r: DhtRecord) => ({
  key: r.key,
  value: r.value,
  publisher: r.publisher,
  seq: r.seq,
  ttl_ms: r.ttlMs,
  pub: r.pub,
  sig: r.sig,
});

/**
 * Decoded byte fields are views of the received payload: each is copied, so that what a node
 * keeps (a stored record, a contact's id) holds its own bytes, never a peer's whole message.
 */
const own = (v: unknown) => (v as Uint8Array).slice();

const fromWireRecord = (x: Record<string, unknown>): DhtRecord => ({
  key: own(x.key),
  value: own(x.value),
  publisher: own(x.publisher),
  seq: x.seq as number,
  ttlMs: x.ttl_ms as number,
  pub: own(x.pub),
  sig: own(x.sig),
});

const contactsOf = (v: unknown): WireContact[] =>
  (v as { id: Uint8Array; addr: string }[]).map((c) => ({ id: own(c.id), addr: c.addr }));

/** Encodes a DHT message (without a length prefix: a request payload delimits it). */
export function encodeDht(m: DhtMsg): Uint8Array {
  const head = { realm: m.realm, from: m.from, mode: m.mode === "client" ? 1 : 0, rid: m.rid };
  switch (m.t) {
    case "ping":
    case "pong":
      return dhtCodec.encodeBody(m.t, head);
    case "find_node":
      return dhtCodec.encodeBody(m.t, { ...head, target: m.target });
    case "nodes":
      return dhtCodec.encodeBody(m.t, { ...head, contacts: m.contacts });
    case "find_value":
      return dhtCodec.encodeBody(m.t, { ...head, key: m.key });
    case "value":
      return dhtCodec.encodeBody(m.t, {
        ...head,
        records: m.records.map(toWireRecord),
        contacts: m.contacts,
      });
    case "store":
      return dhtCodec.encodeBody(m.t, { ...head, record: [toWireRecord(m.record)] });
    case "stored":
      return dhtCodec.encodeBody(m.t, { ...head, refused: m.refused ?? undefined });
  }
}

/**
 * Decodes a DHT message; a `WireError` names the message and the field when it is malformed.
 * A message over the codec's frame limit is refused before it is parsed.
 */
export function decodeDht(body: Uint8Array): DhtMsg {
  if (body.length > dhtCodec.maxFrame) {
    throw new WireError(
      "dht",
      null,
      `${body.length} bytes, over the limit of ${dhtCodec.maxFrame}`,
    );
  }
  const f = dhtCodec.decodeBody(body);
  if ("unknown" in f) throw new WireError(`dht frame type ${f.type}`, null, "unknown");
  const x = f.fields;
  const head = {
    realm: x.realm as string,
    from: own(x.from),
    mode: x.mode === 1 ? "client" as const : "server" as const,
    rid: x.rid as number,
  };
  switch (f.name) {
    case "ping":
    case "pong":
      return { ...head, t: f.name };
    case "find_node":
      return { ...head, t: "find_node", target: own(x.target) };
    case "nodes":
      return { ...head, t: "nodes", contacts: contactsOf(x.contacts) };
    case "find_value":
      return { ...head, t: "find_value", key: own(x.key) };
    case "value":
      return {
        ...head,
        t: "value",
        records: (x.records as Record<string, unknown>[]).map(fromWireRecord),
        contacts: contactsOf(x.contacts),
      };
    case "store": {
      const r = (x.record as Record<string, unknown>[])[0];
      if (!r) throw new WireError("store", "record", "must be one record");
      return { ...head, t: "store", record: fromWireRecord(r) };
    }
    case "stored":
      return { ...head, t: "stored", refused: (x.refused as Refusal | null) ?? null };
  }
  throw new WireError(f.name, null, "not a DHT message");
}
