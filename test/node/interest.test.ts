/** lib/node/interest.ts: the signature check of interest and DHT records never throws. */
import { expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { nodeIdFromSpki, nodeIdText } from "../../lib/identity/mod.ts";
import { interestVerifier } from "../../lib/node/interest.ts";

test("a P-256 key whose point is off the curve is a bad key (false), not a throw", () => {
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  spki[spki.length - 1]! ^= 1; // the point's last byte: off the curve
  const origin = nodeIdText(nodeIdFromSpki(spki)); // the id of exactly this key
  const verify = interestVerifier();
  expect(verify(origin, spki, new Uint8Array(8), new Uint8Array(64))).toBe(false);
  expect(verify.checked()).toBe(0); // no signature was checked: the key never parsed
});
