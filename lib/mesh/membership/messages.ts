/**
 * Membership messages, as the sans-IO core sees them: member ids are directory indices. The wire
 * glue (lib/node) turns indices into node ids and back; `sizeOf` is the encoded size the wire
 * format gives them (CBOR, ids as 32-byte strings), used for MTU budgets and traffic accounting.
 */
import type { MemberMeta } from "./directory.ts";

/** Kinds of update, as numbers (they are on every piggybacked item). */
export const U_ALIVE = 0;
export const U_SUSPECT = 1;
export const U_DEAD = 2;
export const U_LEFT = 3;

/** A membership update: gossiped, piggybacked, and the unit of full-state sync. */
export interface Update {
  kind: number;
  member: number;
  inc: number;
  /** Who says so (suspect/dead), or the member itself (alive/left). */
  from: number;
  /** With `alive`: where the member is and what it says about itself. */
  addr?: string;
  meta?: MemberMeta;
}

/** Every message names its realm and its sender. */
interface Base {
  realm: string;
  from: number;
}

export interface Ping extends Base {
  t: "ping";
  seq: number;
  /** Whom the sender meant (a restarted process at a reused address must not answer). */
  target: number;
  piggy: Update[];
}

export interface Ack extends Base {
  t: "ack";
  seq: number;
  piggy: Update[];
}

/** From an indirect prober: "I asked, the target did not answer me either" (Lifeguard). */
export interface Nack extends Base {
  t: "nack";
  seq: number;
}

export interface PingReq extends Base {
  t: "ping-req";
  seq: number;
  target: number;
  targetAddr: string;
  piggy: Update[];
}

/**
 * State exchange. On join: the joiner's own `alive`, answered with the full view. Periodically
 * (anti-entropy): the sender's view digest alone; the receiver answers with its full view only
 * when the digests differ, and the sender then pushes its own (`reply: false`).
 */
export interface Sync extends Base {
  t: "sync";
  join: boolean;
  /** The sender's view digest (two 32-bit lanes). */
  digest: [number, number];
  members: Update[];
  /** Whether the receiver should answer. */
  reply: boolean;
}

export interface SyncReply extends Base {
  t: "sync-reply";
  digest: [number, number];
  /** Empty when the digests agreed. */
  members: Update[];
}

export interface Gossip extends Base {
  t: "gossip";
  piggy: Update[];
}

export type Msg = Ping | Ack | Nack | PingReq | Sync | SyncReply | Gossip;

const ID = 34; // a 32-byte id with its CBOR head
const HEADER = 12 + ID; // array head, type, realm tag (8 bytes), sender id

/** Encoded size of one update. */
export function updateSize(u: Update): number {
  let n = 2 + ID + 5;
  if (u.kind === U_SUSPECT || u.kind === U_DEAD) n += ID;
  if (u.addr !== undefined) n += 2 + u.addr.length;
  if (u.meta !== undefined) {
    n += 3 + u.meta.realm.length + u.meta.version.length;
    for (const t of u.meta.tags) n += 1 + t.length;
  }
  return n;
}

function updatesSize(us: readonly Update[]): number {
  let n = 3;
  for (const u of us) n += updateSize(u);
  return n;
}

/** The encoded size of a message in bytes. */
export function sizeOf(m: Msg): number {
  switch (m.t) {
    case "ping":
      return HEADER + 5 + ID + updatesSize(m.piggy);
    case "ack":
      return HEADER + 5 + updatesSize(m.piggy);
    case "nack":
      return HEADER + 5;
    case "ping-req":
      return HEADER + 5 + ID + 2 + m.targetAddr.length + updatesSize(m.piggy);
    case "sync":
    case "sync-reply":
      return HEADER + 12 + updatesSize(m.members);
    case "gossip":
      return HEADER + updatesSize(m.piggy);
  }
}
