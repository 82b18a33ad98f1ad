/**
 * Test helper: certificates signed by a real realm CA but shaped wrongly on purpose (another
 * realm's URI, a node id that is not the key's hash, no SAN, wrong key usage), which
 * `macula certs issue` would never make.
 */
import { x509 } from "../../lib/identity/x509.ts";
import type { Ca } from "../../lib/identity/mod.ts";

export interface CraftOptions {
  /** SAN URIs (default none). */
  uris?: string[];
  keyUsage?: x509.KeyUsageFlags;
  eku?: string[];
  ca?: boolean;
  notBefore?: Date;
  notAfter?: Date;
}

/** Signs a certificate for a fresh Ed25519 key with `ca`, exactly as described. */
export async function craft(ca: Ca, opts: CraftOptions = {}): Promise<string> {
  const keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(opts.ca ?? false, undefined, true),
    new x509.KeyUsagesExtension(opts.keyUsage ?? x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(
      opts.eku ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    ),
  ];
  if (opts.uris?.length) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        opts.uris.map((value) => ({ type: "url" as const, value })),
      ),
    );
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "41020304",
    subject: "CN=crafted",
    issuer: ca.cert.subjectName,
    notBefore: opts.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 10 * 86_400_000 * 10),
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: ca.type === "ed25519"
      ? { name: "Ed25519" }
      : ({ name: "ECDSA", hash: "SHA-256" } as EcdsaParams),
    extensions,
  });
  return cert.toString("pem");
}

/** The SPKI DER of a crafted certificate's key. */
export function spkiOf(pem: string): Uint8Array {
  return new Uint8Array(new x509.X509Certificate(pem).publicKey.rawData);
}
