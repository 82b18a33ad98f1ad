/**
 * Showing a certificate to people: `describe` / `describeCert` turn one into plain data (what
 * `macula certs print` shows, and `--json` prints), with expiry warnings.
 */
import { createHash } from "node:crypto";
import {
  caRealmOf,
  daysUntil,
  expiryWarnings,
  nodeIdFromSpki,
  nodeIdText,
  normalizeSerial,
  parseCert,
  parseMaculaUri,
  realmTagHex,
  sanUris,
  x509,
} from "../lib/identity/mod.ts";

/** What a certificate says, in plain data (`macula certs print --json`). */
export interface CertInfo {
  subject: string;
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  /** Whole days until notAfter (negative once expired). */
  daysLeft: number;
  isCa: boolean;
  pathLength: number | null;
  keyType: string;
  keyUsage: string[];
  extendedKeyUsage: string[];
  /** Realm from the node URI (end entity) or the CA URI (CA); null when absent. */
  realm: string | null;
  realmTag: string | null;
  /** Node id from the node URI; null when absent. */
  nodeId: string | null;
  /** `node` or `client` (the kind of the node URI); null for a CA or no URI. */
  role: "node" | "client" | null;
  /** Node id computed from the certificate's key (SHA-256 of the SPKI, base32). */
  keyNodeId: string;
  groups: string[];
  uris: string[];
  dns: string[];
  ips: string[];
  sha256: string;
}

const KU_NAMES: [number, string][] = [
  [x509.KeyUsageFlags.digitalSignature, "digitalSignature"],
  [x509.KeyUsageFlags.nonRepudiation, "nonRepudiation"],
  [x509.KeyUsageFlags.keyEncipherment, "keyEncipherment"],
  [x509.KeyUsageFlags.dataEncipherment, "dataEncipherment"],
  [x509.KeyUsageFlags.keyAgreement, "keyAgreement"],
  [x509.KeyUsageFlags.keyCertSign, "keyCertSign"],
  [x509.KeyUsageFlags.cRLSign, "cRLSign"],
  [x509.KeyUsageFlags.encipherOnly, "encipherOnly"],
  [x509.KeyUsageFlags.decipherOnly, "decipherOnly"],
];
const EKU_NAMES: Record<string, string> = {
  [x509.ExtendedKeyUsage.serverAuth]: "serverAuth",
  [x509.ExtendedKeyUsage.clientAuth]: "clientAuth",
  [x509.ExtendedKeyUsage.codeSigning]: "codeSigning",
  [x509.ExtendedKeyUsage.emailProtection]: "emailProtection",
  [x509.ExtendedKeyUsage.timeStamping]: "timeStamping",
  [x509.ExtendedKeyUsage.ocspSigning]: "ocspSigning",
};

function keyTypeName(cert: x509.X509Certificate): string {
  const alg = cert.publicKey.algorithm as EcKeyAlgorithm;
  if (alg.name === "Ed25519") return "ed25519";
  if (alg.name === "ECDSA" || alg.name === "ECDH") {
    return alg.namedCurve === "P-256" ? "p256" : `ec-${alg.namedCurve}`;
  }
  return alg.name.toLowerCase();
}

/** Describes a parsed certificate. */
export function describe(cert: x509.X509Certificate, now: Date = new Date()): CertInfo {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const items = san?.names.items ?? [];
  const uris = sanUris(cert);
  const parsed = uris.map(parseMaculaUri);
  const node = parsed.find((p) => p?.kind === "node" || p?.kind === "client");
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const realm = node?.realm ?? caRealmOf(cert);
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serial: normalizeSerial(cert.serialNumber),
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    daysLeft: daysUntil(cert.notAfter, now),
    isCa: bc?.ca ?? false,
    pathLength: bc?.pathLength ?? null,
    keyType: keyTypeName(cert),
    keyUsage: ku ? KU_NAMES.filter(([f]) => (ku.usages & f) !== 0).map(([, n]) => n) : [],
    extendedKeyUsage: (eku?.usages ?? []).map((u) => EKU_NAMES[String(u)] ?? String(u)),
    realm,
    realmTag: realm ? realmTagHex(realm) : null,
    nodeId: node?.kind === "node" || node?.kind === "client" ? node.nodeId : null,
    role: node?.kind === "node" || node?.kind === "client" ? node.kind : null,
    keyNodeId: nodeIdText(nodeIdFromSpki(new Uint8Array(cert.publicKey.rawData))),
    groups: parsed.flatMap((p) => (p?.kind === "group" ? [p.group] : [])),
    uris,
    dns: items.filter((n) => n.type === "dns").map((n) => n.value),
    ips: items.filter((n) => n.type === "ip").map((n) => n.value),
    sha256: createHash("sha256").update(new Uint8Array(cert.rawData)).digest("hex"),
  };
}

/** Parses a PEM certificate and describes it; `warnings` holds expiry warnings. */
export function describeCert(
  pem: string,
  now: Date = new Date(),
): { info: CertInfo; warnings: string[] } {
  const cert = parseCert(pem);
  const info = describe(cert, now);
  const label = info.isCa
    ? `the CA${info.realm ? ` for realm ${info.realm}` : ""}`
    : `certificate ${cert.subject}`;
  return { info, warnings: expiryWarnings(label, cert, now) };
}
