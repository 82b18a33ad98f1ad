/**
 * A member's own record and what its signature covers (docs/membership.md, "What a member can and
 * cannot make others believe"). Pure and synchronous: the bytes to sign, the key types a record
 * may be signed with, and the interfaces of the signer and verifier that the edge (lib/node's
 * wire glue) supplies. The core never signs or verifies; it carries proofs.
 *
 * The signed bytes are one deterministic CBOR array (lib/wire's encoder):
 *
 * ```
 * ["macula-member-v1", kind, id, inc, addr, realm, tags, version]
 * ```
 *
 * `kind` is 0 (alive) or 3 (left); `id` the member's node id, the SHA-256 of the key that signs.
 */
import { encodeFrame } from "../../wire/mod.ts";
import type { MemberMeta } from "./directory.ts";
import { U_LEFT } from "./messages.ts";

/** The domain of a member record's signature (no other signed object shares it). */
export const RECORD_DOMAIN = "macula-member-v1";

/** The bytes a member signs for its record of `kind` (alive or left) at incarnation `inc`. */
export function recordBytes(
  kind: number,
  id: string,
  inc: number,
  addr: string,
  meta: MemberMeta,
): Uint8Array {
  return encodeFrame([
    RECORD_DOMAIN,
    kind === U_LEFT ? U_LEFT : 0,
    id,
    inc,
    addr,
    meta.realm,
    meta.tags,
    meta.version,
  ]);
}

/** Key types a record may be signed with: the node key types (lib/identity/keys.ts). */
export type RecordKeyType = "ed25519" | "p256";

// DER SubjectPublicKeyInfo prefixes: Ed25519 (RFC 8410), P-256 uncompressed (RFC 5480).
const ED25519_SPKI = hex("302a300506032b6570032100");
const P256_SPKI = hex("3059301306072a8648ce3d020106082a8648ce3d03010703420004");

function hex(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i += 2) out.push(parseInt(s.slice(i, i + 2), 16));
  return out;
}

function startsWith(b: Uint8Array, prefix: readonly number[], length: number): boolean {
  if (b.length !== length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[i] !== prefix[i]) return false;
  return true;
}

/** The key type of a DER SPKI, or null for anything but an Ed25519 or uncompressed P-256 key. */
export function recordKeyType(spki: Uint8Array): RecordKeyType | null {
  if (startsWith(spki, ED25519_SPKI, 44)) return "ed25519";
  if (startsWith(spki, P256_SPKI, 91)) return "p256";
  return null;
}

/** Signs this node's own records (the edge: WebCrypto over the node's key). */
export interface RecordSigner {
  /** This node's public key, DER SPKI (its SHA-256 is the node id). */
  readonly spki: Uint8Array;
  sign(bytes: Uint8Array): Promise<Uint8Array>;
}
