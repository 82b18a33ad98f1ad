/**
 * The X.509 profile of a Macula node or user certificate (docs/certificates.md, "SAN layout"):
 * not a CA, digitalSignature, serverAuth + clientAuth, the SANs, and key identifiers.
 */
import { x509 } from "./x509.ts";

/** The extensions of an end-entity certificate for `publicKey`, issued by `issuerKey`. */
export async function endEntityExtensions(
  publicKey: x509.PublicKeyType,
  issuerKey: x509.PublicKeyType,
  names: x509.JsonGeneralNames,
): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]),
    new x509.SubjectAlternativeNameExtension(names),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuerKey),
  ];
}
