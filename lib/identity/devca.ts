/**
 * An in-memory development CA: a CA and the certificates it issues, made with @peculiar/x509
 * over WebCrypto. Used by `macula demo`, tests and benchmarks; the realm CA operators use is
 * `macula certs` (certs-tool/).
 */
import {
  caExtensions,
  endEntityExtensions,
  generateKeyPair,
  KEY_ALGORITHMS,
  type KeyType,
  randomSerial,
} from "./profile.ts";

export type { KeyType };
import { x509 } from "./x509.ts";
import { groupUri, nodeIdFromSpki, nodeIdText, nodeUri } from "./names.ts";

/** A CA held in memory. */
export interface DevCa {
  type: KeyType;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  /** The CA certificate, PEM. */
  pem: string;
  /** The realm named in the CA's SAN (`macula://<realm>/ca`), when made for one. */
  realm?: string;
}

/** A PEM certificate and its PKCS#8 PEM private key. */
export interface DevCert {
  cert: string;
  key: string;
}

/** Options for `issue`. */
export interface IssueOptions {
  /** Common name. Default `node`. */
  name?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Key type of the certificate (default: the CA's). */
  type?: KeyType;
  /** DNS names. Default `["localhost"]`. */
  dns?: string[];
  /** IP addresses. Default `["127.0.0.1", "::1"]`. */
  ips?: string[];
  /** Realm for the `macula://<realm>/node/<node-id>` SAN. Default: the CA's realm, if any. */
  realm?: string;
  /** Groups, as `macula://<realm>/group/<g>` SANs (needs a realm). */
  groups?: string[];
  /** Override the node id in the node URI (tests of mismatch detection). */
  nodeIdOverride?: string;
}

const DAY = 86_400_000;

/** Makes a self-signed CA valid from yesterday for 30 days. */
export async function makeCa(
  type: KeyType = "ed25519",
  name = "test-ca",
  realm?: string,
): Promise<DevCa> {
  const keys = await generateKeyPair(type);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    keys,
    signingAlgorithm: KEY_ALGORITHMS[type].sign,
    extensions: await caExtensions(keys.publicKey, realm),
  });
  return { type, cert, keys, pem: cert.toString("pem"), realm };
}

/** Issues a certificate (serverAuth and clientAuth) valid from yesterday for 7 days by default. */
export async function issue(ca: DevCa, opts: IssueOptions = {}): Promise<DevCert> {
  const keys = await generateKeyPair(opts.type ?? ca.type);
  const names: x509.JsonGeneralNames = [
    ...(opts.dns ?? ["localhost"]).map((value) => ({ type: "dns" as const, value })),
    ...(opts.ips ?? ["127.0.0.1", "::1"]).map((value) => ({ type: "ip" as const, value })),
  ];
  const realm = opts.realm ?? ca.realm;
  if (realm) {
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
    const id = opts.nodeIdOverride ?? nodeIdText(nodeIdFromSpki(spki));
    names.push({ type: "url", value: nodeUri(realm, id) });
    for (const g of opts.groups ?? []) names.push({ type: "url", value: groupUri(realm, g) });
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${opts.name ?? "node"}`,
    issuer: ca.cert.subject,
    notBefore: opts.notBefore ?? new Date(Date.now() - DAY),
    notAfter: opts.notAfter ?? new Date(Date.now() + 7 * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: KEY_ALGORITHMS[ca.type].sign,
    extensions: await endEntityExtensions(keys.publicKey, ca.keys.publicKey, names),
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { cert: cert.toString("pem"), key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
}

/** TLS options for an endpoint: the CA plus a fresh certificate it issued. */
export async function tlsFor(ca: DevCa, opts: IssueOptions = {}) {
  const c = await issue(ca, opts);
  return { ca: ca.pem, cert: c.cert, key: c.key };
}
