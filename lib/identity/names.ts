/**
 * Names in Macula's identity model: realms, node ids, groups, and the URIs that carry them in
 * certificates. Everything here is pure and synchronous; docs/certificates.md is the reference.
 *
 * - **Realm**: lowercase DNS-like labels separated by dots (`acme`, `com.acme.prod`): each label
 *   1–63 of `a-z 0-9 -`, not starting or ending with `-`; at most 8 labels and 128 characters.
 * - **Realm tag**: the first 8 bytes of SHA-256(`"macula-realm-v1:" + realm`), 16 hex digits in
 *   text; a fixed-size handle for frames and DHT keys.
 * - **Node id**: SHA-256 of the DER SubjectPublicKeyInfo of the node's public key (32 bytes,
 *   usable as a Kademlia key); its text form is lowercase RFC 4648 base32 without padding (52
 *   characters).
 * - **Group**: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
 * - **Role**: what a certificate may do in its realm: `node` (a mesh node: routes, membership,
 *   traversal, relaying) or `client` (an application or user: the client protocol only).
 * - **URIs** (certificate SANs): `macula://<realm>/node/<node-id>` names a node,
 *   `macula://<realm>/client/<node-id>` a client (the id is the hash of its key, as for a node),
 *   `macula://<realm>/group/<group>` one group membership each, `macula://<realm>/ca` the CA.
 */
import { NameError } from "./errors.ts";
import { createHash } from "node:crypto";

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const GROUP = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const B32 = "abcdefghijklmnopqrstuvwxyz234567";
const NODE_ID_TEXT = /^[a-z2-7]{52}$/;

/** Returns the reason `realm` is not a valid realm name, or null when it is. */
export function realmProblem(realm: string): string | null {
  if (typeof realm !== "string" || realm.length === 0) return "realm name is empty";
  if (realm.length > 128) return `realm name is ${realm.length} characters (at most 128)`;
  const labels = realm.split(".");
  if (labels.length > 8) return `realm name has ${labels.length} labels (at most 8)`;
  for (const l of labels) {
    if (!LABEL.test(l)) {
      return `realm label ${JSON.stringify(l)} is not 1-63 of a-z, 0-9 and '-' (not at either end)`;
    }
  }
  return null;
}

/** Throws `NameError` unless `realm` is a valid realm name; returns it. */
export function checkRealm(realm: string): string {
  const p = realmProblem(realm);
  if (p) throw new NameError(`invalid realm ${JSON.stringify(realm)}: ${p}`);
  return realm;
}

/** The realm's fixed-size tag (8 bytes). */
export function realmTag(realm: string): Uint8Array {
  checkRealm(realm);
  return new Uint8Array(createHash("sha256").update(`macula-realm-v1:${realm}`).digest()).slice(
    0,
    8,
  );
}

/** The realm tag as 16 hex digits. */
export function realmTagHex(realm: string): string {
  return Buffer.from(realmTag(realm)).toString("hex");
}

/** Throws `NameError` unless `group` is a valid group name; returns it. */
export function checkGroup(group: string): string {
  if (!GROUP.test(group)) {
    throw new NameError(
      `invalid group ${
        JSON.stringify(group)
      }: use 1-64 of a-z, 0-9, '-', '_' and '.', starting with a letter or digit`,
    );
  }
  return group;
}

/** The node id (32 bytes) of a public key given as DER SubjectPublicKeyInfo. */
export function nodeIdFromSpki(spki: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(spki).digest());
}

/** Lowercase base32 (RFC 4648 alphabet) without padding. */
export function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

/** The text form of a node id. */
export function nodeIdText(id: Uint8Array): string {
  if (id.length !== 32) throw new NameError(`a node id is 32 bytes, got ${id.length}`);
  return base32(id);
}

/** The 32 bytes of a node id's text form; throws `NameError` when it is not one. */
export function nodeIdFromText(text: string): Uint8Array {
  if (!isNodeIdText(text)) throw new NameError(`not a node id: ${JSON.stringify(text)}`);
  const out = new Uint8Array(32);
  let bits = 0;
  let acc = 0;
  let n = 0;
  for (const ch of text) {
    acc = ((acc << 5) | B32.indexOf(ch)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[n++] = (acc >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

/** True when `text` has the shape of a node id's text form. */
export function isNodeIdText(text: string): boolean {
  return NODE_ID_TEXT.test(text);
}

/** What a certificate may do in its realm (docs/security.md, "Roles"). */
export type Role = "node" | "client";

/** The roles, in the order `--help` lists them. */
export const ROLES: readonly Role[] = ["node", "client"];

/** `macula://<realm>/node/<node-id>`, or `macula://<realm>/client/<node-id>` for a client. */
export function nodeUri(realm: string, nodeId: string, role: Role = "node"): string {
  checkRealm(realm);
  if (!isNodeIdText(nodeId)) throw new NameError(`invalid node id ${JSON.stringify(nodeId)}`);
  if (!ROLES.includes(role)) throw new NameError(`invalid role ${JSON.stringify(role)}`);
  return `macula://${realm}/${role}/${nodeId}`;
}

/** `macula://<realm>/group/<group>` */
export function groupUri(realm: string, group: string): string {
  return `macula://${checkRealm(realm)}/group/${checkGroup(group)}`;
}

/** `macula://<realm>/ca` */
export function caUri(realm: string): string {
  return `macula://${checkRealm(realm)}/ca`;
}

/** What a `macula://` URI names, or null for any other URI. */
export type MaculaUri =
  | { kind: "node" | "client"; realm: string; nodeId: string }
  | { kind: "group"; realm: string; group: string }
  | { kind: "ca"; realm: string };

/** Parses a `macula://` URI; null when it is not one or is malformed. */
export function parseMaculaUri(uri: string): MaculaUri | null {
  const m = /^macula:\/\/([^/]+)\/((node|client)\/([^/]+)|group\/([^/]+)|ca)$/.exec(uri);
  if (!m) return null;
  const realm = m[1]!;
  if (realmProblem(realm)) return null;
  if (m[4] !== undefined) {
    const kind = m[3] as Role;
    return isNodeIdText(m[4]) ? { kind, realm, nodeId: m[4] } : null;
  }
  if (m[5] !== undefined) return GROUP.test(m[5]) ? { kind: "group", realm, group: m[5] } : null;
  return { kind: "ca", realm };
}
