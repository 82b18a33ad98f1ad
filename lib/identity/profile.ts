/**
 * The X.509 profiles of Macula certificates (docs/certificates.md): the realm CA, and node or user
 * certificates (not a CA, digitalSignature, serverAuth + clientAuth, the SANs, key identifiers).
 */
import { caUri } from "./names.ts";
import { x509 } from "./x509.ts";

/** Key algorithms for certificates: Ed25519 (the default) or ECDSA P-256. */
export type KeyType = "ed25519" | "p256";

/** WebCrypto parameters per key type: generating (and importing) keys, and signing with them. */
export const KEY_ALGORITHMS: Record<
  KeyType,
  { gen: Algorithm | EcKeyGenParams; sign: Algorithm | EcdsaParams }
> = {
  ed25519: { gen: { name: "Ed25519" }, sign: { name: "Ed25519" } },
  p256: {
    gen: { name: "ECDSA", namedCurve: "P-256" },
    sign: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams,
  },
};

/** A new extractable signing key pair. */
export async function generateKeyPair(type: KeyType): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(KEY_ALGORITHMS[type].gen, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
}

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
