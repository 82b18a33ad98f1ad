/**
 * Keys of certificates: the two algorithms (Ed25519, the default, and ECDSA P-256), making key
 * pairs, exporting them (SubjectPublicKeyInfo, PKCS#8 PEM), and reading the keys operators hand
 * in (`macula certs issue --in-pub`, a CSR's key, a CA key file).
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { CertsError } from "./errors.ts";
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

/** The DER SubjectPublicKeyInfo of a WebCrypto public key (what a node id hashes). */
export async function exportSpki(publicKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.exportKey("spki", publicKey));
}

/** A WebCrypto private key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
export async function pkcs8Pem(privateKey: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(
    await crypto.subtle.exportKey("pkcs8", privateKey),
    "PRIVATE KEY",
  );
}

/** The key type of a node:crypto key; throws `CertsError` for anything but Ed25519 and P-256. */
export function keyTypeOf(key: KeyObject): KeyType {
  if (key.asymmetricKeyType === "ed25519") return "ed25519";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") {
    return "p256";
  }
  const what = key.asymmetricKeyType === "ec"
    ? `EC ${key.asymmetricKeyDetails?.namedCurve}`
    : key.asymmetricKeyType;
  throw new CertsError(`unsupported key type ${what}: use Ed25519 or ECDSA P-256`);
}

/** The DER SubjectPublicKeyInfo of a node:crypto key (public, or a private key's public half). */
export function spkiOf(key: KeyObject): Uint8Array<ArrayBuffer> {
  const pub = key.type === "public" ? key : createPublicKey(key);
  return Uint8Array.from(pub.export({ type: "spki", format: "der" }));
}

/** Reads a PEM public key (SubjectPublicKeyInfo) and returns its DER; Ed25519 or P-256 only. */
export function publicKeySpki(pem: string, what = "public key"): Uint8Array<ArrayBuffer> {
  if (pem.includes("PRIVATE KEY-----")) {
    throw new CertsError(
      `${what} is a private key: give only the public key (e.g. openssl pkey -in k.pem -pubout)`,
    );
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw new CertsError(`${what} is not a readable PEM public key`, { cause: e });
  }
  if (key.type !== "public") throw new CertsError(`${what} is not a public key`);
  keyTypeOf(key);
  return spkiOf(key);
}
