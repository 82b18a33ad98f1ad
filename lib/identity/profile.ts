/**
 * The X.509 profile of Macula certificates (docs/certificates.md): what a realm CA certificate
 * and a node or user certificate carry. The realm CA: CA with pathLen 0, keyCertSign + cRLSign,
 * `macula://<realm>/ca`. An end entity: not a CA, digitalSignature, serverAuth + clientAuth for a
 * node (it accepts connections) or clientAuth alone for a client, its SANs in a fixed order, key
 * identifiers. Serial numbers: 16 random bytes. issuer.ts applies it.
 */
import { caUri, type Role } from "./names.ts";
import { x509 } from "./x509.ts";

/** A random positive certificate serial number, always 16 bytes in DER, as hex. */
export function randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x40;
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * The extensions of a realm CA: CA with pathLen 0 and keyCertSign + cRLSign (both critical), a
 * subject key identifier, and the SAN `macula://<realm>/ca` when a realm is given.
 */
export async function caExtensions(
  publicKey: x509.PublicKeyType,
  realm?: string,
): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ...(realm
      ? [new x509.SubjectAlternativeNameExtension([{ type: "url", value: caUri(realm) }])]
      : []),
  ];
}

/** The extensions of an end-entity certificate for `publicKey`, issued by `issuerKey`. */
export async function endEntityExtensions(
  publicKey: x509.PublicKeyType,
  issuerKey: x509.PublicKeyType,
  names: x509.JsonGeneralNames,
  role: Role = "node",
): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(
      role === "node"
        ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
        : [x509.ExtendedKeyUsage.clientAuth],
    ),
    new x509.SubjectAlternativeNameExtension(names),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerKey),
  ];
}

/**
 * The SANs of an end-entity certificate, in their order: the node URI, the group URIs, DNS
 * names, IP addresses.
 */
export function leafNames(o: {
  /** `macula://<realm>/node/<id>` (or `/client/<id>`); absent for a certificate of no realm (the in-memory CA). */
  uri?: string | undefined;
  groupUris?: readonly string[];
  dns?: readonly string[];
  ips?: readonly string[];
}): x509.JsonGeneralNames {
  return [
    ...(o.uri ? [{ type: "url" as const, value: o.uri }] : []),
    ...(o.groupUris ?? []).map((value) => ({ type: "url" as const, value })),
    ...(o.dns ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(o.ips ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
}
