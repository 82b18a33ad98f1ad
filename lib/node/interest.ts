/**
 * The edge of interest records (lib/messaging/interest.ts): this node signs its record with its
 * node key, and checks other nodes' records, with node:crypto (synchronous, as the router needs;
 * Bun, Deno and Node all have it). A record's key must be its origin's (SHA-256 of the key is
 * the node id) and its signature must verify. Keys are imported once per origin (bounded).
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { keyTypeOf, nodeIdFromSpki, nodeIdText } from "../identity/mod.ts";
import { recordKeyType } from "../mesh/mod.ts";
import type { InterestSigner, InterestVerifier } from "../messaging/mod.ts";

/** Signs this node's interest records with its key (PKCS#8 PEM, Ed25519 or P-256). */
export function interestSigner(keyPem: string): InterestSigner {
  const priv = createPrivateKey(keyPem);
  const type = keyTypeOf(priv);
  const key = new Uint8Array(createPublicKey(priv).export({ type: "spki", format: "der" }));
  return {
    key,
    sign: (bytes) =>
      new Uint8Array(
        type === "ed25519"
          ? sign(null, bytes, priv)
          : sign("sha256", bytes, { key: priv, dsaEncoding: "ieee-p1363" }),
      ),
  };
}

/** Checks records of other nodes; keeps up to `maxKeys` imported keys. */
export function interestVerifier(maxKeys = 16_384): InterestVerifier & { checked(): number } {
  const keys = new Map<string, { spki: Buffer; key: KeyObject }>();
  let checked = 0;
  const check: InterestVerifier = (origin, spki, bytes, sig) => {
    const type = recordKeyType(spki);
    if (!type) return false;
    let k = keys.get(origin);
    try {
      if (!k || !k.spki.equals(spki)) {
        if (nodeIdText(nodeIdFromSpki(spki)) !== origin) return false; // not the origin's key
        const der = Buffer.from(spki);
        // Throws for a key that does not parse (a P-256 point off the curve): a bad one.
        k = { spki: der, key: createPublicKey({ key: der, format: "der", type: "spki" }) };
        if (keys.size >= maxKeys) keys.delete(keys.keys().next().value!);
        keys.set(origin, k);
      }
      checked++;
      return type === "ed25519"
        ? verify(null, bytes, k.key, sig)
        : verify("sha256", bytes, { key: k.key, dsaEncoding: "ieee-p1363" }, sig);
    } catch {
      return false;
    }
  };
  return Object.assign(check, { checked: () => checked });
}
