/**
 * Showing what a file holds to people (what `macula certs print` shows, and `--json` prints):
 * `describe` / `describeCert` turn a certificate into plain data, with expiry warnings;
 * `describeCrl`, `describeCsr` and `describePublicKey` do the same for a CRL, a certificate
 * request and a public key; `describeFile` takes a whole PEM file and describes each block.
 */
import { createHash } from "node:crypto";
import {
  caRealmOf,
  CertsError,
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
import { blocksOf, kindText, type PemBlock } from "./inputs.ts";

/** What a certificate says, in plain data (`macula certs print --json`). */
export interface CertInfo {
  kind: "certificate";
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

/** `ed25519`, `p256`, or the algorithm's name for other keys. */
function keyTypeName(key: x509.PublicKey): string {
  const alg = key.algorithm as EcKeyAlgorithm;
  if (alg.name === "Ed25519") return "ed25519";
  if (alg.name.startsWith("RSA")) return "rsa";
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
    kind: "certificate",
    subject: cert.subject,
    issuer: cert.issuer,
    serial: normalizeSerial(cert.serialNumber),
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    daysLeft: daysUntil(cert.notAfter, now),
    isCa: bc?.ca ?? false,
    pathLength: bc?.pathLength ?? null,
    keyType: keyTypeName(cert.publicKey),
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
  return described(parseCert(pem), now);
}

function described(cert: x509.X509Certificate, now: Date): { info: CertInfo; warnings: string[] } {
  const info = describe(cert, now);
  const label = info.isCa
    ? `the CA${info.realm ? ` for realm ${info.realm}` : ""}`
    : `certificate ${cert.subject}`;
  return { info, warnings: expiryWarnings(label, cert, now) };
}

/** One revoked certificate of a CRL. */
export interface CrlEntryInfo {
  /** Serial number, lowercase hex (as `certs print` shows certificates' serials). */
  serial: string;
  /** When it was revoked (ISO 8601). */
  date: string;
  /** The reason code's name (`keyCompromise`, `cessationOfOperation`…), null when absent. */
  reason: string | null;
}

/** What a CRL says, in plain data (`macula certs print --json crl.pem`). */
export interface CrlInfo {
  kind: "crl";
  issuer: string;
  /** The signing CA's key id (authority key identifier, hex); null when absent. */
  authorityKeyId: string | null;
  /** The CRL number (decimal), which grows with every CRL the CA signs; null when absent. */
  number: string | null;
  thisUpdate: string;
  /** When the CA promised a newer CRL; null when the CRL names no date. */
  nextUpdate: string | null;
  /** Whole days until nextUpdate (negative once due); null without one. */
  daysLeft: number | null;
  revoked: CrlEntryInfo[];
  sha256: string;
}

/** The cRLNumber extension (RFC 5280 5.2.3). */
const CRL_NUMBER_OID = "2.5.29.20";

/**
 * The CRL number as text, for display only: a DER INTEGER of up to 20 octets (what `certs
 * revoke` writes); "unreadable" when the extension holds something else.
 */
function crlNumberText(crl: x509.X509Crl): string | null {
  const ext = crl.extensions.find((e) => e.type === CRL_NUMBER_OID);
  if (!ext) return null;
  const v = new Uint8Array(ext.value);
  if (v.length < 3 || v.length > 23 || v[0] !== 0x02 || v[1] !== v.length - 2 || v[2]! & 0x80) {
    return "unreadable";
  }
  return BigInt(`0x${Buffer.from(v.subarray(2)).toString("hex")}`).toString();
}

/** The warning for a CRL past its nextUpdate (nodes and `verify` still use it; renew it). */
export function crlWarnings(crl: x509.X509Crl, now: Date = new Date()): string[] {
  if (!crl.nextUpdate || crl.nextUpdate.getTime() >= now.getTime()) return [];
  return [
    `warning: the CRL was due for renewal on ${crl.nextUpdate.toISOString()}; run 'macula certs revoke' to refresh it`,
  ];
}

/** Describes a parsed CRL (its signature is not checked: `certs verify --crl` does that). */
export function describeCrl(crl: x509.X509Crl, now: Date = new Date()): CrlInfo {
  const aki = crl.extensions.find((e) => e instanceof x509.AuthorityKeyIdentifierExtension) as
    | x509.AuthorityKeyIdentifierExtension
    | undefined;
  return {
    kind: "crl",
    issuer: crl.issuer,
    authorityKeyId: aki?.keyId ?? null,
    number: crlNumberText(crl),
    thisUpdate: crl.thisUpdate.toISOString(),
    nextUpdate: crl.nextUpdate?.toISOString() ?? null,
    daysLeft: crl.nextUpdate ? daysUntil(crl.nextUpdate, now) : null,
    revoked: crl.entries.map((e) => ({
      serial: normalizeSerial(e.serialNumber),
      date: e.revocationDate.toISOString(),
      reason: e.reason === undefined ? null : (x509.X509CrlReason[e.reason] ?? String(e.reason)),
    })),
    sha256: createHash("sha256").update(new Uint8Array(crl.rawData)).digest("hex"),
  };
}

/** What a public key is (`macula certs print key.pub.pem`). */
export interface PublicKeyInfo {
  kind: "public-key";
  keyType: string;
  /** The node id a certificate for this key names (SHA-256 of the SPKI, base32). */
  nodeId: string;
  /** SHA-256 of the DER SubjectPublicKeyInfo, hex. */
  sha256: string;
}

/** Describes a public key (SubjectPublicKeyInfo). */
export function describePublicKey(key: x509.PublicKey): PublicKeyInfo {
  const spki = new Uint8Array(key.rawData);
  return {
    kind: "public-key",
    keyType: keyTypeName(key),
    nodeId: nodeIdText(nodeIdFromSpki(spki)),
    sha256: createHash("sha256").update(spki).digest("hex"),
  };
}

/** What a PKCS#10 certificate request asks for (`macula certs print req.csr`). */
export interface CsrInfo {
  kind: "csr";
  subject: string;
  keyType: string;
  /** The node id a certificate for the request's key names. */
  nodeId: string;
  /** DNS and IP names it asks for (`certs sign` keeps them). */
  dns: string[];
  ips: string[];
  /** True when its self-signature verifies (`certs sign` refuses it otherwise). */
  signatureValid: boolean;
  sha256: string;
}

/** Describes a parsed certificate request. */
export async function describeCsr(csr: x509.Pkcs10CertificateRequest): Promise<CsrInfo> {
  const names = csr.extensions.flatMap((e) =>
    e instanceof x509.SubjectAlternativeNameExtension ? e.names.items : []
  );
  return {
    kind: "csr",
    subject: csr.subject,
    keyType: keyTypeName(csr.publicKey),
    nodeId: nodeIdText(nodeIdFromSpki(new Uint8Array(csr.publicKey.rawData))),
    dns: names.filter((n) => n.type === "dns").map((n) => n.value),
    ips: names.filter((n) => n.type === "ip").map((n) => n.value),
    signatureValid: await csr.verify().catch(() => false),
    sha256: createHash("sha256").update(new Uint8Array(csr.rawData)).digest("hex"),
  };
}

/** Anything `macula certs print` shows. */
export type FileInfo = CertInfo | CrlInfo | CsrInfo | PublicKeyInfo;

/** What `describeFile` found in a file. */
export interface FileDescription {
  /** One entry per block it can show, in the file's order (a CA bundle has several). */
  items: FileInfo[];
  /** Expiry and renewal warnings, and a note for blocks not shown (a private key). */
  warnings: string[];
}

/** What `describeFile` refers people to when a file holds nothing it shows. */
export const PRINTABLE = "give a certificate, a CRL, a CSR or a public key";

/**
 * Describes every block of a PEM file that is a certificate, CRL, certificate request or public
 * key; `subject` names the file in messages. Throws `CertsError` (one line) when the file holds
 * none of them (a private key, not PEM) or a block of theirs is damaged.
 */
export async function describeFile(
  text: string,
  subject: string,
  now: Date = new Date(),
): Promise<FileDescription> {
  const blocks = blocksOf(text, subject);
  const items: FileInfo[] = [];
  const warnings: string[] = [];
  const skipped: PemBlock[] = [];
  for (const b of blocks) {
    const damaged = (what: string) =>
      new CertsError(`${subject} holds ${what} that cannot be read (the file is damaged)`);
    switch (b.kind) {
      case "certificate": {
        let cert: x509.X509Certificate;
        try {
          cert = new x509.X509Certificate(b.pem);
        } catch {
          throw damaged("a certificate");
        }
        const d = described(cert, now);
        items.push(d.info);
        warnings.push(...d.warnings);
        break;
      }
      case "crl": {
        let crl: x509.X509Crl;
        try {
          crl = new x509.X509Crl(b.pem);
        } catch {
          throw damaged("a CRL");
        }
        items.push(describeCrl(crl, now));
        warnings.push(...crlWarnings(crl, now));
        break;
      }
      case "csr": {
        let csr: x509.Pkcs10CertificateRequest;
        try {
          csr = new x509.Pkcs10CertificateRequest(b.pem);
        } catch {
          throw damaged("a certificate request");
        }
        items.push(await describeCsr(csr));
        break;
      }
      case "public-key": {
        let key: x509.PublicKey;
        try {
          key = new x509.PublicKey(b.pem);
        } catch {
          throw damaged("a public key");
        }
        items.push(describePublicKey(key));
        break;
      }
      case "parameters":
        break;
      default:
        skipped.push(b);
    }
  }
  if (items.length === 0) {
    const first = skipped[0];
    throw new CertsError(
      `${subject} is ${
        first ? kindText(first) : "key parameters only"
      }, not a certificate (${PRINTABLE})`,
    );
  }
  if (skipped.length > 0) {
    warnings.push(`note: ${subject} also holds ${skipped.map(kindText).join(", ")} (not shown)`);
  }
  return { items, warnings };
}
