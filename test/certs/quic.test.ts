/**
 * Certificates made by certs-tool carry a real mutual-TLS handshake on lib/quic: an Ed25519 CA
 * with Ed25519 node keys (the default), and a P-256 CA with P-256 node keys signed via a public
 * key (`--in-pub`). Each side sees the other's node URI.
 */
import { describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { describe as describeParsed } from "../../certs-tool/mod.ts";
import { type Ca, initCa, issueCert } from "../../lib/identity/mod.ts";
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { x509 } from "../../lib/identity/x509.ts";
import { closingEndpoints, echoStreams } from "../helpers/quic.ts";

const DAY = 86_400_000;
const { track } = closingEndpoints();

async function tlsFor(ca: Ca, name: string, p256: boolean) {
  if (!p256) {
    const c = await issueCert({ ca, name, ips: ["127.0.0.1"], durationMs: 30 * DAY });
    return { tls: { ca: ca.pem, cert: c.pem, key: c.keyPem! }, nodeId: c.nodeId };
  }
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const c = await issueCert({
    ca,
    name,
    ips: ["127.0.0.1"],
    durationMs: 30 * DAY,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string,
  });
  const key = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  return { tls: { ca: ca.pem, cert: c.pem, key }, nodeId: c.nodeId };
}

describe("mutual TLS on lib/quic with realm certificates", () => {
  test.each([["ed25519", false], ["p256", true]] as const)("%s", async (keyType, p256) => {
    const ca = (await initCa({ realm: "acme", durationMs: 365 * DAY, keyType })).ca;
    const a = await tlsFor(ca, "alpha", p256);
    const b = await tlsFor(ca, "beta", p256);
    const alpha = track(await QuicEndpoint.bind({ host: "127.0.0.1", tls: a.tls }));
    const beta = track(await QuicEndpoint.bind({ host: "127.0.0.1", tls: b.tls }));
    const accepted = (async () => {
      for await (const conn of alpha) {
        echoStreams(conn);
        return conn;
      }
    })();
    const conn = await beta.connect(alpha.address);
    const s = await conn.openStream();
    const done = s.readAll();
    await s.end(new TextEncoder().encode("hello"));
    expect(new TextDecoder().decode(await done)).toBe("hello");
    const seenByBeta = describeParsed(
      new x509.X509Certificate(Uint8Array.from(conn.peerCertificates[0]!)),
    );
    expect(seenByBeta.uris[0]).toBe(`macula://acme/node/${a.nodeId}`);
    const server = await accepted;
    const seenByAlpha = describeParsed(
      new x509.X509Certificate(Uint8Array.from(server!.peerCertificates[0]!)),
    );
    expect(seenByAlpha.nodeId).toBe(b.nodeId);
    await conn.close(0, "done");
  });
});
