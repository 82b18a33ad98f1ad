/**
 * Nodes whose ids start alike, for the tests of node-id prefixes (a prefix two members share is
 * ambiguous): a node's dev-realm certificate is issued ahead, for a key drawn until its id has
 * the shape wanted, and written where `Node.start` reuses it (`<data-dir>/node/node.crt`,
 * `node.key`).
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  IDENTITY_DEFAULTS,
  issueCert,
  loadCa,
  nodeIdFromSpki,
  nodeIdText,
} from "../../lib/identity/mod.ts";

/** Keys drawn at most (a first character is 1 of 32: 1000 draws miss with p < 1e-13). */
const MAX_DRAWS = 1000;

/**
 * Prepares `dataDir` so that a dev-realm node started on it with `devCaDir: caDir` has an id
 * `wanted` accepts; returns that id.
 */
export async function prepareNodeId(
  dataDir: string,
  caDir: string,
  wanted: (id: string) => boolean,
): Promise<string> {
  for (let i = 0; i < MAX_DRAWS; i++) {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
    const id = nodeIdText(nodeIdFromSpki(spki));
    if (!wanted(id)) continue;
    const { loopback, devRealm } = IDENTITY_DEFAULTS;
    const cert = await issueCert({
      ca: await loadCa(caDir),
      name: "node",
      durationMs: devRealm.certLifetimeMs,
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string,
      dns: [...loopback.dns],
      ips: [...loopback.ips],
    });
    if (cert.nodeId !== id) throw new Error(`issued ${cert.nodeId}, drew ${id}`);
    const nodeDir = join(dataDir, "node");
    mkdirSync(nodeDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(nodeDir, "node.crt"), `${cert.pem}\n`);
    writeFileSync(
      join(nodeDir, "node.key"),
      privateKey.export({ type: "pkcs8", format: "pem" }) as string,
      { mode: 0o600 },
    );
    return id;
  }
  throw new Error(`no key in ${MAX_DRAWS} draws made an id of the shape wanted`);
}
