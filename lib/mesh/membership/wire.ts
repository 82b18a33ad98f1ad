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
 * ping-req   [4, realm, from, addr, seq, target, target_addr, updates]
 * sync       [5, realm, from, addr, flags, digest1, digest2, updates]
 * sync-reply [6, realm, from, addr, digest1, digest2, updates]
 * gossip     [7, realm, from, addr, updates]
 * update     [kind, id, inc, from]  or, for alive, [kind, id, inc, from, addr, realm, tags, version]
 * ```
 */
import { Codec, type FieldSpec, type FrameSpec, WireError } from "../../wire/mod.ts";
import type { Directory, MemberMeta } from "./directory.ts";
import type { Msg, Update } from "./messages.ts";

/** Most updates a message may carry (a full view of a large mesh travels in several). */
export const MAX_UPDATES = 100_000;
const MAX_STR = 256;

const nonEmpty = (v: string) => v.length > 0;
const TEXT = { kind: "str", max: MAX_STR, valid: nonEmpty, want: `a text of 1-${MAX_STR} bytes` };
const ID = TEXT;

const UPDATE: readonly FieldSpec[] = [
  { name: "kind", kind: "uint", max: 3 },
  { name: "id", ...ID } as FieldSpec,
  { name: "inc", kind: "uint", max: 0xffffffff },
  { name: "from", ...ID } as FieldSpec,
  // Only in an alive: where the member is and what it says about itself.
  { name: "addr", ...TEXT, optional: true } as FieldSpec,
  { name: "realm", ...TEXT, optional: true } as FieldSpec,
  { name: "tags", kind: "strs", max: 32, itemMax: MAX_STR, optional: true },
  { name: "version", kind: "str", max: MAX_STR, optional: true },
];

const f = {
  realm: { name: "realm", ...TEXT } as FieldSpec,
  from: { name: "from", ...ID } as FieldSpec,
  addr: { name: "addr", ...TEXT } as FieldSpec,
  seq: { name: "seq", kind: "uint", max: Number.MAX_SAFE_INTEGER } as FieldSpec,
  target: { name: "target", ...ID } as FieldSpec,
  targetAddr: { name: "target_addr", ...TEXT } as FieldSpec,
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
  { type: 4, name: "ping-req", fields: [...HEAD, f.seq, f.target, f.targetAddr, f.updates] },
  { type: 5, name: "sync", fields: [...HEAD, f.flags, f.digest1, f.digest2, f.updates] },
  { type: 6, name: "sync-reply", fields: [...HEAD, f.digest1, f.digest2, f.updates] },
  { type: 7, name: "gossip", fields: [...HEAD, f.updates] },
];

/** Membership messages as frames; a full sync of a large mesh may take several MiB (a request payload holds up to 16 MiB). */
export const membershipCodec = new Codec(MEMBERSHIP_FRAMES, 16 * 1024 * 1024);

interface WireUpdate {
  kind: number;
  id: string;
  inc: number;
  from: string;
  addr?: string | null;
  realm?: string | null;
  tags?: string[] | null;
  version?: string | null;
}

/** Encodes `m` with ids from `dir`; `addr` is the sender's own address (where to answer). */
export function encodeMembership(m: Msg, dir: Directory, addr: string): Uint8Array {
  const id = (i: number) => dir.entries[i]!.id;
  const u = (x: Update): WireUpdate => {
    const w: WireUpdate = { kind: x.kind, id: id(x.member), inc: x.inc, from: id(x.from) };
    if (x.addr !== undefined && x.meta !== undefined) {
      w.addr = x.addr;
      w.realm = x.meta.realm;
      w.tags = x.meta.tags;
      w.version = x.meta.version;
    }
    return w;
  };
  const head = { realm: m.realm, from: id(m.from), addr };
  switch (m.t) {
    case "ping":
      return membershipCodec.encodeBody(m.t, {
        ...head,
        seq: m.seq,
        target: id(m.target),
        updates: m.piggy.map(u),
      });
    case "ack":
      return membershipCodec.encodeBody(m.t, { ...head, seq: m.seq, updates: m.piggy.map(u) });
    case "nack":
      return membershipCodec.encodeBody(m.t, { ...head, seq: m.seq });
    case "ping-req":
      return membershipCodec.encodeBody(m.t, {
        ...head,
        seq: m.seq,
        target: id(m.target),
        target_addr: m.targetAddr,
        updates: m.piggy.map(u),
      });
    case "sync":
      return membershipCodec.encodeBody(m.t, {
        ...head,
        flags: (m.join ? 1 : 0) | (m.reply ? 2 : 0),
        digest1: m.digest[0],
        digest2: m.digest[1],
        updates: m.members.map(u),
      });
    case "sync-reply":
      return membershipCodec.encodeBody(m.t, {
        ...head,
        digest1: m.digest[0],
        digest2: m.digest[1],
        updates: m.members.map(u),
      });
    case "gossip":
      return membershipCodec.encodeBody(m.t, { ...head, updates: m.piggy.map(u) });
  }
}

/**
 * Decodes a message, interning its ids into `dir`. Returns the message and the sender's
 * address and id, or throws `WireError`.
 */
export function decodeMembership(
  bytes: Uint8Array,
  dir: Directory,
): { msg: Msg; fromAddr: string; fromId: string } {
  const frame = membershipCodec.decodeBody(bytes);
  if ("unknown" in frame) {
    throw new WireError("membership", null, `unknown message type ${frame.type}`);
  }
  const x = frame.fields as Record<string, unknown>;
  const updates = (x.updates as WireUpdate[] | undefined ?? []).map((w, i): Update => {
    const u: Update = {
      kind: w.kind,
      member: dir.intern(w.id),
      inc: w.inc,
      from: dir.intern(w.from),
    };
    const parts = [w.addr, w.realm, w.tags, w.version].filter((p) => p !== null).length;
    if (parts === 4) {
      const meta: MemberMeta = { realm: w.realm!, tags: w.tags!, version: w.version! };
      u.addr = w.addr!;
      u.meta = meta;
    } else if (parts !== 0) {
      throw new WireError(
        frame.name,
        `updates[${i}]`,
        "an alive carries addr, realm, tags and version together",
      );
    }
    return u;
  });
  const fromId = x.from as string;
  const fromAddr = x.addr as string;
  const base = { realm: x.realm as string, from: dir.intern(fromId) };
  let msg: Msg;
  switch (frame.name) {
    case "ping":
      msg = {
        ...base,
        t: "ping",
        seq: x.seq as number,
        target: dir.intern(x.target as string),
        piggy: updates,
      };
      break;
    case "ack":
      msg = { ...base, t: "ack", seq: x.seq as number, piggy: updates };
      break;
    case "nack":
      msg = { ...base, t: "nack", seq: x.seq as number };
      break;
    case "ping-req":
      msg = {
        ...base,
        t: "ping-req",
        seq: x.seq as number,
        target: dir.intern(x.target as string),
        targetAddr: x.target_addr as string,
        piggy: updates,
      };
      break;
    case "sync": {
      const flags = x.flags as number;
      msg = {
        ...base,
        t: "sync",
        join: (flags & 1) !== 0,
        reply: (flags & 2) !== 0,
        digest: [x.digest1 as number, x.digest2 as number],
        members: updates,
      };
      break;
    }
    case "sync-reply":
      msg = {
        ...base,
        t: "sync-reply",
        digest: [x.digest1 as number, x.digest2 as number],
        members: updates,
      };
      break;
    default:
      msg = { ...base, t: "gossip", piggy: updates };
  }
  return { msg, fromAddr, fromId };
}
