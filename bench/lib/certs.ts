/**
 * Throw-away TLS material for benchmarks: one CA and two leaves (server, client), ECDSA P-256 via
 * WebCrypto, written as PEM (keys PKCS#8) into a fresh temp dir. No system binary needed.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
// @peculiar/x509 (via tsyringe) needs a Reflect metadata polyfill loaded before it.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { CERT_FILES } from "../quic/protocol.ts";

const EC: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIG: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const DAY_MS = 86_400_000;

x509.cryptoProvider.set(crypto);

function keyPem(pkcs8: ArrayBuffer): string {
  return x509.PemConverter.encode(pkcs8, "PRIVATE KEY");
}

async function leaf(
  ca: { cert: x509.X509Certificate; keys: CryptoKeyPair },
  cn: string,
  names: x509.JsonGeneralNames,
): Promise<{ certPem: string; keyPem: string }> {
  const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${cn}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 7 * DAY_MS),
    signingAlgorithm: SIG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  return {
    certPem: cert.toString("pem"),
    keyPem: keyPem(await crypto.subtle.exportKey("pkcs8", keys.privateKey)),
  };
}

function randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0] ?? 0) & 0x7f; // positive
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export interface CertDir {
  dir: string;
  remove(): Promise<void>;
}

/**
 * Creates a temp dir holding `ca.pem`, `server-cert.pem`, `server-key.pem`, `client-cert.pem`,
 * `client-key.pem`. The server leaf names `localhost` and IP 127.0.0.1 (and ::1).
 */
export async function makeCertDir(prefix = "macula-bench-certs-"): Promise<CertDir> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const caKeys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]);
  const now = Date.now();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: "CN=Macula bench CA",
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 7 * DAY_MS),
    signingAlgorithm: SIG,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const ca = { cert: caCert, keys: caKeys };
  const server = await leaf(ca, "localhost", [
    { type: "dns", value: "localhost" },
    { type: "ip", value: "127.0.0.1" },
    { type: "ip", value: "::1" },
  ]);
  const client = await leaf(ca, "bench-client", [{ type: "dns", value: "bench-client" }]);
  await Promise.all([
    writeFile(join(dir, CERT_FILES.ca), caCert.toString("pem")),
    writeFile(join(dir, CERT_FILES.serverCert), server.certPem),
    writeFile(join(dir, CERT_FILES.serverKey), server.keyPem, { mode: 0o600 }),
    writeFile(join(dir, CERT_FILES.clientCert), client.certPem),
    writeFile(join(dir, CERT_FILES.clientKey), client.keyPem, { mode: 0o600 }),
  ]);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
