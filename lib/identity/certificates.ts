/**
 * Reading certificates: parsing with a clear error, the URI SANs, the realm a CA names, the
 * common name, and serial numbers in the one form they are compared in.
 */
import { CertsError } from "./errors.ts";
import { parseMaculaUri } from "./names.ts";
import { x509 } from "./x509.ts";

/** Parses a PEM (or DER) certificate; throws `CertsError` naming `what`. */
export function parseCert(pem: string | Uint8Array, what = "certificate"): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem as string);
  } catch (e) {
    throw new CertsError(`${what} is not a readable X.509 certificate (${(e as Error).message})`, {
      cause: e,
    });
  }
}

/** The certificates of a PEM text (a chain, leaf first), as DER. */
export function derChainOf(pem: string): Uint8Array[] {
  return x509.PemConverter.decode(pem).map((b) => new Uint8Array(b));
}

/** The URI SANs of a certificate. */
export function sanUris(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.items.filter((n) => n.type === "url").map((n) => n.value) : [];
}

/** The realm a CA certificate names in its `macula://<realm>/ca` SAN, or null. */
export function caRealmOf(cert: x509.X509Certificate): string | null {
  for (const uri of sanUris(cert)) {
    const parsed = parseMaculaUri(uri);
    if (parsed?.kind === "ca") return parsed.realm;
  }
  return null;
}

/** The certificate's common name (the name given when it was issued), or "". */
export function commonName(cert: x509.X509Certificate): string {
  return cert.subjectName.getField("CN")[0] ?? "";
}

/** Serial numbers compare as numbers: lowercase hex without leading zeros. */
export function normalizeSerial(text: string): string {
  const t = text.trim().toLowerCase().replace(/^0x/, "").replace(/[:\s]/g, "");
  if (!/^[0-9a-f]{1,64}$/.test(t)) {
    throw new CertsError(`invalid serial number ${JSON.stringify(text)}: give it in hex`);
  }
  return BigInt(`0x${t}`).toString(16);
}
