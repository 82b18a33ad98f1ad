/**
 * The one issuer: the only code that makes a CA certificate or signs an end-entity certificate.
 * It generates the keys, names the node by the hash of its key, lays out the SANs and
 * extensions of the profile (profile.ts), draws the serial, and signs for the validity window it
 * is given. What goes in (which names are allowed, how long a certificate lives, whether it may
 * outlive its CA) is decided by its two callers: the realm CA (ca.ts, issue.ts: `macula certs`
 * and the dev realm) and the in-memory CA (devca.ts: demo, tests, benchmarks).
 */
import { exportSpki, generateKeyPair, KEY_ALGORITHMS, type KeyType, pkcs8Pem } from "./keys.ts";
import { groupUri, nodeIdFromSpki, nodeIdText, nodeUri, type Role } from "./names.ts";
import { caExtensions, endEntityExtensions, leafNames, randomSerial } from "./profile.ts";
import { x509 } from "./x509.ts";

/** A CA that can sign: its certificate (whose subject becomes the issuer), key and key type. */
export interface Signer {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
  type: KeyType;
}

/** What a new CA certificate says. */
export interface CaCertificateSpec {
  /** Key type of the CA's new key pair. */
  type: KeyType;
  /** The subject, e.g. `CN=Macula realm CA acme, O=Macula`. */
  subject: string;
  /** The realm named in the `macula://<realm>/ca` SAN; none for a CA of no realm (tests). */
  realm?: string | undefined;
  notBefore: Date;
  notAfter: Date;
}

/** Makes a key pair and its self-signed CA certificate. */
export async function createCaCertificate(
  spec: CaCertificateSpec,
): Promise<{ cert: x509.X509Certificate; keys: CryptoKeyPair }> {
  const keys = await generateKeyPair(spec.type);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: spec.subject,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    keys,
    signingAlgorithm: KEY_ALGORITHMS[spec.type].sign,
    extensions: await caExtensions(keys.publicKey, spec.realm),
  });
  return { cert, keys };
}

/** What an end-entity (node or user) certificate says. */
export interface LeafCertificateSpec {
  /** A new key pair of this type, or this DER SubjectPublicKeyInfo (its key stays elsewhere). */
  key: KeyType | Uint8Array<ArrayBuffer>;
  /** The subject, e.g. `CN=node`. */
  subject: string;
  /** With a realm, the certificate names the node (`macula://<realm>/node/<id>`) and its groups. */
  realm?: string | undefined;
  /** A node (default) or a client: the URI's kind and the extended key usages. */
  role?: Role;
  groups?: readonly string[];
  dns?: readonly string[];
  ips?: readonly string[];
  /** A node id for the URI other than the key's (only to test that verification refuses it). */
  nodeIdOverride?: string | undefined;
  notBefore: Date;
  notAfter: Date;
}

/** A signed end-entity certificate. */
export interface LeafCertificate {
  cert: x509.X509Certificate;
  /** The certificate, PEM. */
  pem: string;
  /** The new private key, PKCS#8 PEM; absent when the spec gave a public key. */
  keyPem?: string;
  /** The node id of the certificate's key (text form). */
  nodeId: string;
  /** The node URI, when the certificate has a realm. */
  uri?: string;
}

/** Signs an end-entity certificate with `ca`. */
export async function signLeafCertificate(
  ca: Signer,
  spec: LeafCertificateSpec,
): Promise<LeafCertificate> {
  let spki: Uint8Array<ArrayBuffer>;
  let keyPem: string | undefined;
  if (typeof spec.key === "string") {
    const keys = await generateKeyPair(spec.key);
    spki = await exportSpki(keys.publicKey);
    keyPem = await pkcs8Pem(keys.privateKey);
  } else {
    spki = spec.key;
  }
  const nodeId = nodeIdText(nodeIdFromSpki(spki));
  const realm = spec.realm;
  const role = spec.role ?? "node";
  const uri = realm ? nodeUri(realm, spec.nodeIdOverride ?? nodeId, role) : undefined;
  const names = leafNames({
    uri,
    groupUris: realm ? (spec.groups ?? []).map((g) => groupUri(realm, g)) : [],
    dns: spec.dns ?? [],
    ips: spec.ips ?? [],
  });
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: spec.subject,
    issuer: ca.cert.subjectName,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey: spki,
    signingKey: ca.privateKey,
    signingAlgorithm: KEY_ALGORITHMS[ca.type].sign,
    extensions: await endEntityExtensions(spki, ca.cert.publicKey, names, role),
  });
  const out: LeafCertificate = { cert, pem: cert.toString("pem"), nodeId };
  if (keyPem !== undefined) out.keyPem = keyPem;
  if (uri !== undefined) out.uri = uri;
  return out;
}
