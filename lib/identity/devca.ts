/**
 * An in-memory development CA for `macula demo`, tests and benchmarks: a thin layer over the one
 * issuer (issuer.ts), so its certificates have the realm CA's profile. Nothing is written to
 * disk and inputs are looser than the realm CA's (issue.ts): a CA may have no realm (then its
 * certificates carry no macula:// URI), a certificate may have a P-256 key, any name, a validity
 * outside the CA's, or a forged node id (tests of what verification refuses). Lifetimes:
 * `IDENTITY_DEFAULTS.devCa`.
 */
import type { Credentials } from "./credentials.ts";
import { IDENTITY_DEFAULTS } from "./defaults.ts";
import { createCaCertificate, signLeafCertificate } from "./issuer.ts";
import type { KeyType } from "./keys.ts";
import type { Role } from "./names.ts";
import type { x509 } from "./x509.ts";

export type { KeyType };

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
export interface DevIssueOptions {
  /** Common name. Default `node`. */
  name?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Key type of the certificate (default: the CA's). */
  type?: KeyType;
  /** DNS names. Default `["localhost"]` (`IDENTITY_DEFAULTS.loopback`). */
  dns?: string[];
  /** IP addresses. Default `["127.0.0.1", "::1"]` (`IDENTITY_DEFAULTS.loopback`). */
  ips?: string[];
  /** Realm for the `macula://<realm>/node/<node-id>` SAN. Default: the CA's realm, if any. */
  realm?: string;
  /** A node (default) or a client certificate. */
  role?: Role;
  /** Groups, as `macula://<realm>/group/<g>` SANs (needs a realm). */
  groups?: string[];
  /** Override the node id in the node URI (tests of mismatch detection). */
  nodeIdOverride?: string;
}

const { devCa, loopback } = IDENTITY_DEFAULTS;

/** Makes a self-signed CA valid from yesterday for 30 days. */
export async function makeCa(
  type: KeyType = IDENTITY_DEFAULTS.keyType,
  name = "test-ca",
  realm?: string,
): Promise<DevCa> {
  const now = Date.now(); // certificate validity is calendar time
  const { cert, keys } = await createCaCertificate({
    type,
    subject: `CN=${name}`,
    realm,
    notBefore: new Date(now - devCa.backdateMs),
    notAfter: new Date(now + devCa.caLifetimeMs),
  });
  return { type, cert, keys, pem: cert.toString("pem"), realm };
}

/** Issues a certificate (serverAuth and clientAuth) valid from yesterday for 7 days by default. */
export async function issue(ca: DevCa, opts: DevIssueOptions = {}): Promise<DevCert> {
  const now = Date.now(); // certificate validity is calendar time
  const leaf = await signLeafCertificate(
    { cert: ca.cert, privateKey: ca.keys.privateKey, type: ca.type },
    {
      key: opts.type ?? ca.type,
      subject: `CN=${opts.name ?? "node"}`,
      realm: opts.realm ?? ca.realm,
      role: opts.role ?? "node",
      groups: opts.groups ?? [],
      dns: opts.dns ?? loopback.dns,
      ips: opts.ips ?? loopback.ips,
      nodeIdOverride: opts.nodeIdOverride,
      notBefore: opts.notBefore ?? new Date(now - devCa.backdateMs),
      notAfter: opts.notAfter ?? new Date(now + devCa.certLifetimeMs),
    },
  );
  return { cert: leaf.pem, key: leaf.keyPem! };
}

/** TLS options for an endpoint: the CA plus a fresh certificate it issued. */
export async function tlsFor(
  ca: DevCa,
  opts: DevIssueOptions = {},
): Promise<Credentials> {
  const c = await issue(ca, opts);
  return { ca: ca.pem, cert: c.cert, key: c.key };
}
