/**
 * Membership messages on the wire (docs/membership.md, "On the wire"): one lib/wire frame per
 * message (a CBOR array `[type, field…]` checked field by field, like every frame), members named
 * by node id (the directory index is local to a node). A malformed message is a `WireError`
 * naming the message and the field; the receiver drops it and counts it.
 *
 * ```
 * ping       [1, realm, from, addr, seq, target, updates]
 * ack        [2, realm, from, addr, seq, updates]
 * nack       [3, realm, from, addr, seq]
 * ping-req   [4, realm, from, addr, seq, target, updates]
 * sync       [5, realm, from, addr, flags, digest1, digest2, updates]
 * sync-reply [6, realm, from, addr, digest1, digest2, updates]
 * gossip     [7, realm, from, addr, updates]
 * update     [kind, id, inc, from]                                         a claim (suspect, dead)
 *            [kind, id, inc, from, addr, realm, tags, version, key, sig]   a claim with the record
 *            [kind, id, inc, null, addr, realm, tags, version, key, sig]   a record (alive, left)
 * ```
 *
 * Every id is a node id (52 base32 characters) and every realm a realm name, checked at decode.
 * A record (alive and left always; suspect and dead in a full sync) is the member's own (an alive
 * or left has no `from`: it is the member), `key` its DER public key (Ed25519 or P-256) and `sig` its signature over
 * `recordBytes` (records.ts). Decoding checks the form only; the signature is the edge's to check.
 *
 * Decoding does not touch a directory: ids stay text until the edge has screened the message
 * (`Membership.screen`) and checked its signatures, and `toMsg` interns only what is kept — a
 * message naming 20,000 members the core refuses costs no directory entry.
 */
import { isNodeIdText, realmProblem } from "../../identity/mod.ts";
import { Codec, type FieldSpec, type FrameSpec, WireError } from "../../wire/mod.ts";
import type { Directory, MemberMeta } from "./directory.ts";
import { MAX_INCARNATION, type Msg, type Proof, U_ALIVE, U_LEFT, type Update } from "./messages.ts";
import { recordKeyType } from "./records.ts";

/** Most updates a message may carry (a full view of a large mesh travels in several). */
export const MAX_UPDATES = 100_000;
const MAX_STR = 256;

const nonEmpty = (v: string) => v.length > 0;
const TEXT = { kind: "str", max: MAX_STR, valid: nonEmpty, want: `a text of 1-${MAX_STR} bytes` };
const ID = { kind: "str", max: 52, valid: isNodeIdText, want: "a node id" };
const REALM = { kind: "str", max: 128, valid: (v: string) => !realmProblem(v), want: "a realm" };

const UPDATE: readonly FieldSpec[] = [
  { name: "kind", kind: "uint", max: 3 },
  { name: "id", ...ID } as FieldSpec,
  { name: "inc", kind: "uint", max: MAX_INCARNATION },
  { name: "from", ...ID, optional: true } as FieldSpec,
  // The member's own record: where it is, what it says about itself, its key and signature.
  { name: "addr", ...TEXT, optional: true } as FieldSpec,
  { name: "realm", ...REALM, optional: true } as FieldSpec,
  { name: "tags", kind: "strs", max: 32, itemMax: MAX_STR, optional: true },
  { name: "version", kind: "str", max: MAX_STR, optional: true },
  {
    name: "key",
    kind: "bytes",
    max: 91,
    optional: true,
    valid: (b: Uint8Array) => recordKeyType(b) !== null,
    want: "a DER Ed25519 or P-256 public key",
  } as FieldSpec,
  {
    name: "sig",
    kind: "bytes",
    max: 64,
    optional: true,
    valid: (b: Uint8Array) => b.length === 64,
    want: "a 64-byte signature",
  } as FieldSpec,
];

const f = {
  realm: { name: "realm", ...REALM } as FieldSpec,
  from: { name: "from", ...ID } as FieldSpec,
  addr: { name: "addr", ...TEXT } as FieldSpec,
  seq: { name: "seq", kind: "uint", max: Number.MAX_SAFE_INTEGER } as FieldSpec,
  target: { name: "target", ...ID } as FieldSpec,
  flags: { name: "flags", kind: "uint", max: 3 } as FieldSpec,
  digest1: { name: "digest1", kind: "uint", max: 0xffffffff } as FieldSpec,
  digest2: { name: "digest2", kind: "uint", max: 0xffffffff } as FieldSpec,
  updates: { name: "updates", kind: "records", max: MAX_UPDATES, fields: UPDATE } as FieldSpec,
};
const HEAD = [f.realm, f.from, f.addr];

/** The membership frames (their own type space: every type must be understood). */
export const MEMBERSHIP_FRAMES: readonly FrameSpec[] = [
  { type: 1, name: "ping", fields: [...HEAD, f.seq, f.target, f.updates] },
  { type: 2, name: "ack", fields: [...HEAD, f.seq, f.updates] },
  { type: 3, name: "nack", fields: [...HEAD, f.seq] },
  { type: 4, name: "ping-req", fields: [...HEAD, f.seq, f.target, f.updates] },
  { type: 5, name: "sync", fields: [...HEAD, f.flags, f.digest1, f.digest2, f.updates] },
  { type: 6, name: "sync-reply", fields: [...HEAD, f.digest1, f.digest2, f.updates] },
  { type: 7, name: "gossip", fields: [...HEAD, f.updates] },
];

/** Membership messages as frames; a full sync of a large mesh may take several MiB (a request payload holds up to 16 MiB). */
export const membershipCodec = new Codec(MEMBERSHIP_FRAMES, 16 * 1024 * 1024);

/** A member's own record as it travels. */
export interface WireRecord {
  addr: string;
  meta: MemberMeta;
  proof: Proof;
}

/** An update as decoded: members by node id. */
export interface WireUpdate {
  kind: number;
  id: string;
  inc: number;
  /** The member itself (a record), or who claims (a claim). */
  from: string;
  record?: WireRecord;
}

/** A message as decoded, before anything of it is believed. */
export interface WireMessage {
  t: Msg["t"];
  realm: string;
  /** The sender's node id (the edge checks it against the session's certificate). */
  fromId: string;
  /** The address the sender says it answers at (believed only when its own record says so). */
  fromAddr: string;
  seq: number;
  /** ping and ping-req: the member meant. */
  target: string | null;
  join: boolean;
  reply: boolean;
  digest: [number, number];
  updates: WireUpdate[];
}

interface RawUpdate {
  kind: number;
  id: string;
  inc: number;
  from: string | null;
  addr: string | null;
  realm: string | null;
  tags: string[] | null;
  version: string | null;
  key: Uint8Array | null;
  sig: Uint8Array | null;
}

/**
 * Encodes `m` with ids from `dir`; `addr` is the sender's own address (where to answer).
 * `proofOf` gives the signature of a record that carries none (this node's own records, signed
 * by the edge); a record left without one is not sent (and a claim goes without its record).
 */
export function encodeMembership(
  m: Msg,
  dir: Directory,
  addr: string,
  proofOf: (u: Update) => Proof | undefined = () => undefined,
): Uint8Array {
  const id = (i: number) => dir.entries[i]!.id;
  const updates = (us: readonly Update[]) => {
    const out: Record<string, unknown>[] = [];
    for (const x of us) {
      const record = x.kind === U_ALIVE || x.kind === U_LEFT;
      const w: Record<string, unknown> = {
        kind: x.kind,
        id: id(x.member),
        inc: x.inc,
        from: record ? null : id(x.from),
      };
      const proof = x.addr !== undefined && x.meta !== undefined
        ? x.proof ?? proofOf(x)
        : undefined;
      if (proof && x.meta) {
        w.addr = x.addr;
        w.realm = x.meta.realm;
        w.tags = x.meta.tags;
        w.version = x.meta.version;
        w.key = proof.key;
        w.sig = proof.sig;
      } else if (record) continue; // no record without its signature
      out.push(w);
    }
    return out;
  };
  const head = { realm: m.realm, from: id(m.from), addr };
  switch (m.t) {
    case "ping":
      return membershipCodec.encodeBody(m.t, {
        ...head,
        seq: m.seq,
        target: id(m.target),
        updates: updates(m.piggy),
      });
    case "ack":
      return membershipCodec.encodeBody(m.t, { ...head, seq: m.seq, updates: updates(m.piggy) });
    case "nack":
      return membershipCodec.encodeBody(m.t, { ...head, seq: m.seq });
    case "ping-req":
      return membershipCodec.encodeBody(m.t, {
        ...head,
        seq: m.seq,
        target: id(m.target),
        updates: updates(m.piggy),
      });
    case "sync":
      return membershipCodec.encodeBody(m.t, {
        ...head,
        flags: (m.join ? 1 : 0) | (m.reply ? 2 : 0),
        digest1: m.digest[0],
        digest2: m.digest[1],
        updates: updates(m.members),
      });
    case "sync-reply":
      return membershipCodec.encodeBody(m.t, {
        ...head,
        digest1: m.digest[0],
        digest2: m.digest[1],
        updates: updates(m.members),
      });
    case "gossip":
      return membershipCodec.encodeBody(m.t, { ...head, updates: updates(m.piggy) });
  }
}

/** Decodes a message (ids as text, nothing interned), or throws `WireError`. */
export function decodeMembership(bytes: Uint8Array): WireMessage {
  const frame = membershipCodec.decodeBody(bytes);
  if ("unknown" in frame) {
    throw new WireError("membership", null, `unknown message type ${frame.type}`);
  }
  const x = frame.fields as Record<string, unknown>;
  const raw = (x.updates as RawUpdate[] | null) ?? [];
  const updates = new Array<WireUpdate>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const w = raw[i]!;
    const u: WireUpdate = { kind: w.kind, id: w.id, inc: w.inc, from: w.from ?? w.id };
    const parts = [w.addr, w.realm, w.tags, w.version, w.key, w.sig];
    const present = parts.filter((p) => p !== null).length;
    const where = `updates[${i}]`;
    if (present === parts.length) {
      u.record = {
        addr: w.addr!,
        meta: { realm: w.realm!, tags: w.tags!, version: w.version! },
        proof: { key: w.key!, sig: w.sig! },
      };
    } else if (present !== 0) {
      throw new WireError(
        frame.name,
        where,
        "a record carries addr, realm, tags, version, key and sig together",
      );
    }
    if (w.kind === U_ALIVE || w.kind === U_LEFT) {
      if (!u.record) throw new WireError(frame.name, where, "an alive or left carries its record");
      if (w.from !== null) throw new WireError(frame.name, where, "an alive or left has no from");
    } else if (w.from === null) {
      throw new WireError(frame.name, where, "a suspect or dead names who claims it (from)");
    }
    updates[i] = u;
  }
  const flags = (x.flags as number | null) ?? 0;
  return {
    t: frame.name as Msg["t"],
    realm: x.realm as string,
    fromId: x.from as string,
    fromAddr: x.addr as string,
    seq: (x.seq as number | null) ?? 0,
    target: (x.target as string | null) ?? null,
    join: (flags & 1) !== 0,
    reply: (flags & 2) !== 0,
    digest: [(x.digest1 as number | null) ?? 0, (x.digest2 as number | null) ?? 0],
    updates,
  };
}

/**
 * The core's form of a decoded message, with `updates` (the ones kept, in order) in place of
 * the decoded ones: the sender and the kept members are interned; an accuser or a target this
 * directory does not know is -1 (the core ignores what it does not know).
 */
export function toMsg(w: WireMessage, updates: readonly WireUpdate[], dir: Directory): Msg {
  const known = (id: string) => dir.indexOf(id) ?? -1;
  const base = { realm: w.realm, from: dir.intern(w.fromId) };
  const piggy = updates.map((x): Update => {
    const member = dir.intern(x.id);
    const record = x.kind === U_ALIVE || x.kind === U_LEFT;
    const u: Update = {
      kind: x.kind,
      member,
      inc: x.inc,
      from: record ? member : known(x.from),
    };
    if (x.record) {
      u.addr = x.record.addr;
      u.meta = x.record.meta;
      u.proof = x.record.proof;
    }
    return u;
  });
  switch (w.t) {
    case "ping":
      return { ...base, t: "ping", seq: w.seq, target: known(w.target!), piggy };
    case "ack":
      return { ...base, t: "ack", seq: w.seq, piggy };
    case "nack":
      return { ...base, t: "nack", seq: w.seq };
    case "ping-req":
      return { ...base, t: "ping-req", seq: w.seq, target: known(w.target!), piggy };
    case "sync":
      return {
        ...base,
        t: "sync",
        join: w.join,
        reply: w.reply,
        digest: w.digest,
        members: piggy,
      };
    case "sync-reply":
      return { ...base, t: "sync-reply", digest: w.digest, members: piggy };
    case "gossip":
      return { ...base, t: "gossip", piggy };
  }
}
