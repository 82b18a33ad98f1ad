/**
 * Membership messages, as the sans-IO core sees them: member ids are directory indices. The wire
 * glue (lib/node) turns indices into node ids and back; `sizeOf` is the encoded size the wire
 * format gives them (CBOR, ids as 52-character node ids), used for MTU budgets and traffic
 * accounting.
 *
 * Two kinds of update travel (docs/membership.md, "What a member can and cannot make others
 * believe"):
 *
 * - a member's own **record** (`alive`, `left`): its incarnation, address and metadata, signed by
 *   the member's node key. The signature (`proof`) is opaque to the core: the edge checked it
 *   before the core saw the update, and the core only carries it on.
 * - a **claim** by another member (`suspect`, `dead`): unsigned, believed only at the incarnation
 *   the member itself last signed, so the member can always refute it with the next one. In a
 *   full-state sync a claim carries the member's record at that incarnation too, so a node that
 *   did not know the member learns it.
 */
import type { MemberMeta } from "./directory.ts";

/** Kinds of update, as numbers (they are on every piggybacked item). */
export const U_ALIVE = 0;
export const U_SUSPECT = 1;
export const U_DEAD = 2;
export const U_LEFT = 3;

/** The largest incarnation the wire carries (32 bits). */
export const MAX_INCARNATION = 0xffffffff;

/**
 * A member's signature over its own record: its public key (DER SubjectPublicKeyInfo, whose
 * SHA-256 is the member's node id) and the signature. Opaque to the core.
 */
export interface Proof {
  key: Uint8Array;
  sig: Uint8Array;
}

/** Encoded size of an Ed25519 proof: a 44-byte SPKI and a 64-byte signature, with their heads. */
export const ED25519_PROOF_BYTES = 46 + 66;

/** A membership update: gossiped, piggybacked, and the unit of full-state sync. */
export interface Update {
  kind: number;
  member: number;
  inc: number;
  /** Who says so (suspect/dead), or the member itself (alive/left). */
  from: number;
  /**
   * The member's own record at `inc`: where it is and what it says about itself. Always with
   * alive and left; with suspect and dead in a full sync (the alive record the claim is about).
   */
  addr?: string;
  meta?: MemberMeta;
  /**
   * The member's signature over that record (checked by the edge before the core saw it).
   * Absent on this node's own records (the edge signs them when it encodes) and in the
   * simulator, whose messages never leave memory.
   */
  proof?: Proof;
}

/** True when `u` carries the member's own record (address and metadata). */
export function hasRecord(u: Update): boolean {
  return u.addr !== undefined && u.meta !== undefined;
}

/** Every message names its realm and its sender. */
interface Base {
  realm: string;
  from: number;
}

export interface Ping extends Base {
  t: "ping";
  seq: number;
  /** Whom the sender meant (a restarted process at a reused address must not answer); -1 when the receiver does not know it. */
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

/**
 * "Ping `target` for me." The helper pings the target at the address it holds for it (the
 * target's own signed record), and only a member it knows; -1 when unknown.
 */
export interface PingReq extends Base {
  t: "ping-req";
  seq: number;
  target: number;
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

const ID = 54; // a 52-character node id with its CBOR head
const HEADER = 12 + ID; // array head, type, realm (about 8 bytes), sender id

/**
 * Encoded size of one update; `proofBytes` is what a signature adds to a record that carries
 * none yet (this node's own: the edge signs it), default Ed25519's.
 */
export function updateSize(u: Update, proofBytes = ED25519_PROOF_BYTES): number {
  let n = 2 + ID + 5 + (u.kind === U_ALIVE || u.kind === U_LEFT ? 1 : ID);
  if (u.addr !== undefined) n += 2 + u.addr.length;
  if (u.meta !== undefined) {
    n += 3 + u.meta.realm.length + u.meta.version.length;
    for (const t of u.meta.tags) n += 1 + t.length;
    n += u.proof ? 4 + u.proof.key.length + u.proof.sig.length : proofBytes;
  }
  return n;
}

function updatesSize(us: readonly Update[], proofBytes: number): number {
  let n = 3;
  for (const u of us) n += updateSize(u, proofBytes);
  return n;
}

/** The encoded size of a message in bytes. */
export function sizeOf(m: Msg, proofBytes = ED25519_PROOF_BYTES): number {
  switch (m.t) {
    case "ping":
      return HEADER + 5 + ID + updatesSize(m.piggy, proofBytes);
    case "ack":
      return HEADER + 5 + updatesSize(m.piggy, proofBytes);
    case "nack":
      return HEADER + 5;
    case "ping-req":
      return HEADER + 5 + ID + updatesSize(m.piggy, proofBytes);
    case "sync":
    case "sync-reply":
      return HEADER + 12 + updatesSize(m.members, proofBytes);
    case "gossip":
      return HEADER + updatesSize(m.piggy, proofBytes);
  }
}
