/**
 * Membership messages on the wire (docs/membership.md, "On the wire"): one CBOR array per
 * message, members named by node id (the directory index is local to a node), decoded strictly —
 * anything malformed is a `MembershipWireError` naming what was wrong, and the receiver drops the
 * datagram and counts it.
 *
 * ```
 * [1, type, realm, fromId, fromAddr, seq, targetId, targetAddr, digest1, digest2, flags, updates]
 * update: [kind, id, inc, fromId, addr, realm, tags, version]   (the last four only for alive)
 * ```
 */
import { Decoder } from "cbor-x/decode";
import { Encoder } from "cbor-x/encode";
import type { Directory, MemberMeta } from "./directory.ts";
import type { Msg, Update } from "./messages.ts";

/** A malformed membership message. */
export class MembershipWireError extends Error {
  override name = "MembershipWireError";
}

const VERSION = 1;
const TYPES = ["ping", "ack", "nack", "ping-req", "sync", "sync-reply", "gossip"] as const;
/** Most updates a message may carry (a full view of a large mesh travels in several). */
export const MAX_UPDATES = 100_000;
const MAX_STR = 256;

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Encodes `m` with ids from `dir`; `addr` is the sender's own address (where to answer). */
export function encodeMembership(m: Msg, dir: Directory, addr: string): Uint8Array {
  const id = (i: number) => dir.entries[i]!.id;
  const u = (x: Update) => {
    const base: unknown[] = [x.kind, id(x.member), x.inc, id(x.from)];
    if (x.addr !== undefined && x.meta !== undefined) {
      base.push(x.addr, x.meta.realm, x.meta.tags, x.meta.version);
    }
    return base;
  };
  const seq = "seq" in m ? m.seq : 0;
  const target = m.t === "ping" || m.t === "ping-req" ? id(m.target) : "";
  const targetAddr = m.t === "ping-req" ? m.targetAddr : "";
  const digest = m.t === "sync" || m.t === "sync-reply" ? m.digest : [0, 0];
  const flags = m.t === "sync" ? (m.join ? 1 : 0) | (m.reply ? 2 : 0) : 0;
  const updates = "piggy" in m ? m.piggy : "members" in m ? m.members : [];
  return encoder.encode([
    VERSION,
    TYPES.indexOf(m.t),
    m.realm,
    id(m.from),
    addr,
    seq,
    target,
    targetAddr,
    digest[0],
    digest[1],
    flags,
    updates.map(u),
  ]) as Uint8Array;
}

function str(v: unknown, what: string, allowEmpty = true): string {
  if (typeof v !== "string" || v.length > MAX_STR || (!allowEmpty && v.length === 0)) {
    throw new MembershipWireError(`${what}: not a text of 1-${MAX_STR} characters`);
  }
  return v;
}

function uint(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v === "bigint" && v >= 0n && v <= BigInt(max)) v = Number(v);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new MembershipWireError(`${what}: not an unsigned integer up to ${max}`);
  }
  return v;
}

/**
 * Decodes a message, interning its ids into `dir`. Returns the message and the sender's
 * address and id, or throws `MembershipWireError`.
 */
export function decodeMembership(
  bytes: Uint8Array,
  dir: Directory,
): { msg: Msg; fromAddr: string; fromId: string } {
  let a: unknown;
  try {
    a = decoder.decode(bytes);
  } catch (e) {
    throw new MembershipWireError(`not valid CBOR (${(e as Error).message})`);
  }
  if (!Array.isArray(a) || a.length < 12) {
    throw new MembershipWireError("not a membership message (an array of 12)");
  }
  if (a[0] !== VERSION) throw new MembershipWireError(`version ${String(a[0])} is not 1`);
  const type = TYPES[uint(a[1], "type", TYPES.length - 1)]!;
  const realm = str(a[2], "realm", false);
  const fromId = str(a[3], "from", false);
  const fromAddr = str(a[4], "fromAddr", false);
  const seq = uint(a[5], "seq");
  const target = str(a[6], "target");
  const targetAddr = str(a[7], "targetAddr");
  const d1 = uint(a[8], "digest", 0xffffffff);
  const d2 = uint(a[9], "digest", 0xffffffff);
  const flags = uint(a[10], "flags", 3);
  if (!Array.isArray(a[11]) || a[11].length > MAX_UPDATES) {
    throw new MembershipWireError(`updates: not an array of at most ${MAX_UPDATES}`);
  }
  const updates: Update[] = a[11].map((x: unknown, i: number) => {
    if (!Array.isArray(x) || (x.length !== 4 && x.length !== 8)) {
      throw new MembershipWireError(`updates[${i}]: not an array of 4 or 8`);
    }
    const kind = uint(x[0], `updates[${i}].kind`, 3);
    const u: Update = {
      kind,
      member: dir.intern(str(x[1], `updates[${i}].id`, false)),
      inc: uint(x[2], `updates[${i}].inc`, 0xffffffff),
      from: dir.intern(str(x[3], `updates[${i}].from`, false)),
    };
    if (x.length === 8) {
      const tags = x[6];
      if (!Array.isArray(tags) || tags.length > 32) {
        throw new MembershipWireError(`updates[${i}].tags: not an array of at most 32`);
      }
      const meta: MemberMeta = {
        realm: str(x[5], `updates[${i}].realm`, false),
        tags: tags.map((t: unknown) => str(t, `updates[${i}].tags`)),
        version: str(x[7], `updates[${i}].version`),
      };
      u.addr = str(x[4], `updates[${i}].addr`, false);
      u.meta = meta;
    }
    return u;
  });
  const from = dir.intern(fromId);
  const base = { realm, from };
  let msg: Msg;
  switch (type) {
    case "ping":
      msg = {
        ...base,
        t: type,
        seq,
        target: dir.intern(str(target, "target", false)),
        piggy: updates,
      };
      break;
    case "ack":
      msg = { ...base, t: type, seq, piggy: updates };
      break;
    case "nack":
      msg = { ...base, t: type, seq };
      break;
    case "ping-req":
      msg = {
        ...base,
        t: type,
        seq,
        target: dir.intern(str(target, "target", false)),
        targetAddr: str(targetAddr, "targetAddr", false),
        piggy: updates,
      };
      break;
    case "sync":
      msg = {
        ...base,
        t: type,
        join: (flags & 1) !== 0,
        reply: (flags & 2) !== 0,
        digest: [d1, d2],
        members: updates,
      };
      break;
    case "sync-reply":
      msg = { ...base, t: type, digest: [d1, d2], members: updates };
      break;
    case "gossip":
      msg = { ...base, t: type, piggy: updates };
      break;
  }
  return { msg, fromAddr, fromId };
}
