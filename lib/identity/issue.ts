/**
 * Issuing with the realm CA: `issueCert` (a new Ed25519 key, or a public key handed in) and
 * `signCsr` (a PKCS#10 request). Both check their inputs, set the validity window (from
 * `IDENTITY_DEFAULTS.realm.backdateMs` before now, cut at the CA's expiry) and sign with the
 * one issuer (issuer.ts); the node URI and group URIs always come from the CA's realm.
 */
import { isIP } from "node:net";
import { join } from "node:path";
import type { Ca } from "./ca.ts";
import { normalizeSerial } from "./certificates.ts";
import { IDENTITY_DEFAULTS } from "./defaults.ts";
import { CertsError } from "./errors.ts";
import { expiryWarnings } from "./expiry.ts";
import { type OutFile, refuseExisting, writeAll } from "./files.ts";
import { signLeafCertificate } from "./issuer.ts";
import { type KeyType, publicKeySpki } from "./keys.ts";
import { checkGroup, type Role, ROLES } from "./names.ts";
import { x509 } from "./x509.ts";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const DNS =
  /^(?=.{1,253}$)(\*\.)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Throws unless `name` is a valid certificate name (CN, and the file name `issue` writes). */
export function checkName(name: string): string {
  if (!NAME.test(name)) {
    throw new CertsError(
      `invalid name ${
        JSON.stringify(name)
      }: use 1-64 of A-Z, a-z, 0-9, '.', '_', '@' and '-', starting with a letter or digit`,
    );
  }
  return name;
}

function checkDns(dns: string): string {
  if (!DNS.test(dns)) throw new CertsError(`invalid DNS name ${JSON.stringify(dns)}`);
  return dns.toLowerCase();
}

function checkIp(ip: string): string {
  if (isIP(ip) === 0) throw new CertsError(`invalid IP address ${JSON.stringify(ip)}`);
  return ip;
}

/** What goes into an end-entity certificate besides its key. */
export interface LeafOptions {
  ca: Ca;
  /** Common name (`CN`). */
  name: string;
  /** What the certificate may do: a mesh node (default) or a client (docs/security.md). */
  role?: Role;
  groups?: string[];
  dns?: string[];
  ips?: string[];
  durationMs: number;
  /**
   * Start of validity; default `IDENTITY_DEFAULTS.realm.backdateMs` (5 minutes) before `now`. The
   * end is start + duration, cut at the CA's expiry.
   */
  notBefore?: Date;
  /** The current time (tests). */
  now?: Date;
}

/** A freshly made end-entity certificate. */
export interface Issued {
  pem: string;
  cert: x509.X509Certificate;
  /** PKCS#8 PEM private key, when the key was generated here. */
  keyPem?: string;
  nodeId: string;
  uri: string;
  realm: string;
  role: Role;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** True when the requested lifetime was cut to the CA's expiry. */
  capped: boolean;
  certPath?: string;
  keyPath?: string;
  warnings: string[];
}

/** Checks the inputs, sets the validity window and signs; `key` as in `LeafCertificateSpec`. */
async function buildLeaf(
  opts: LeafOptions,
  key: KeyType | Uint8Array<ArrayBuffer>,
): Promise<Issued> {
  const { ca } = opts;
  const name = checkName(opts.name);
  const role = opts.role ?? "node";
  if (!ROLES.includes(role)) {
    throw new CertsError(`invalid role ${JSON.stringify(role)} (want ${ROLES.join(" or ")})`);
  }
  const groups = [...new Set((opts.groups ?? []).map(checkGroup))];
  const dns = [...new Set((opts.dns ?? []).map(checkDns))];
  const ips = [...new Set((opts.ips ?? []).map(checkIp))];
  const now = opts.now ?? new Date();
  if (ca.cert.notAfter.getTime() <= now.getTime()) {
    throw new CertsError(
      `the CA for realm ${ca.realm} expired on ${ca.cert.notAfter.toISOString()}: make a new CA (see docs/certificates.md, rotation)`,
    );
  }
  const notBefore = opts.notBefore ?? new Date(now.getTime() - IDENTITY_DEFAULTS.realm.backdateMs);
  let notAfter = new Date(
    (opts.notBefore ? notBefore.getTime() : now.getTime()) + opts.durationMs,
  );
  let capped = false;
  if (notAfter.getTime() > ca.cert.notAfter.getTime()) {
    notAfter = ca.cert.notAfter;
    capped = true;
  }
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new CertsError("the validity window is empty (the start is after the CA's expiry)");
  }
  const leaf = await signLeafCertificate(ca, {
    key,
    subject: `CN=${name}`,
    realm: ca.realm,
    role,
    groups,
    dns,
    ips,
    notBefore,
    notAfter,
  });
  const cert = leaf.cert;
  const warnings = [
    ...expiryWarnings(`the CA for realm ${ca.realm}`, ca.cert, now),
    ...expiryWarnings(`certificate ${name}`, cert, now),
  ];
  const issued: Issued = {
    pem: leaf.pem,
    cert,
    nodeId: leaf.nodeId,
    uri: leaf.uri!,
    realm: ca.realm,
    role,
    serial: normalizeSerial(cert.serialNumber),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    capped,
    warnings,
  };
  if (leaf.keyPem !== undefined) issued.keyPem = leaf.keyPem;
  return issued;
}

/** Options for `issueCert`. */
export interface IssueOptions extends LeafOptions {
  /** Sign this PEM public key instead of generating a key pair (the private key stays on its host). */
  publicKeyPem?: string;
  /** Directory for `<name>.crt` and `<name>.key` (mode 0600); nothing is written when omitted. */
  outDir?: string;
  force?: boolean;
}

/**
 * Issues an end-entity certificate, with a new key (`IDENTITY_DEFAULTS.keyType`, Ed25519) unless
 * `publicKeyPem` is given.
 */
export async function issueCert(opts: IssueOptions): Promise<Issued> {
  checkName(opts.name);
  const certPath = opts.outDir === undefined ? undefined : join(opts.outDir, `${opts.name}.crt`);
  const keyPath = opts.outDir === undefined || opts.publicKeyPem !== undefined
    ? undefined
    : join(opts.outDir, `${opts.name}.key`);
  refuseExisting([certPath, keyPath].filter((p) => p !== undefined), opts.force ?? false);
  const issued = await buildLeaf(
    opts,
    opts.publicKeyPem === undefined ? IDENTITY_DEFAULTS.keyType : publicKeySpki(opts.publicKeyPem),
  );
  if (certPath) {
    const files: OutFile[] = [{ path: certPath, data: `${issued.pem}\n` }];
    if (keyPath && issued.keyPem) {
      files.push({ path: keyPath, data: `${issued.keyPem}\n`, mode: 0o600 });
    }
    await writeAll(files, { force: opts.force ?? false });
    issued.certPath = certPath;
    if (keyPath) issued.keyPath = keyPath;
  }
  return issued;
}

/** Options for `signCsr`. */
export interface SignCsrOptions extends Omit<LeafOptions, "name"> {
  csrPem: string;
  /** Common name; default the request's CN. */
  name?: string;
  /** Write the certificate here; nothing is written when omitted. */
  outFile?: string;
  force?: boolean;
}

/**
 * Signs a PKCS#10 request. Only the request's key and (unless `name` is given) its CN are used,
 * plus DNS and IP names it asks for; the macula:// URIs always come from the CA.
 */
export async function signCsr(opts: SignCsrOptions): Promise<Issued> {
  if (opts.outFile) refuseExisting([opts.outFile], opts.force ?? false);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(opts.csrPem);
  } catch (e) {
    throw new CertsError("the request is not a readable PKCS#10 certificate request (PEM)", {
      cause: e,
    });
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) throw new CertsError("the request's self-signature does not verify");
  const spki = publicKeySpki(
    x509.PemConverter.encode(csr.publicKey.rawData, "PUBLIC KEY"),
    "the request's key",
  );
  const name = opts.name ?? csr.subjectName.getField("CN")[0];
  if (name === undefined) throw new CertsError("the request has no CN: give --name");
  const dns = [...(opts.dns ?? [])];
  const ips = [...(opts.ips ?? [])];
  for (const ext of csr.extensions) {
    if (ext instanceof x509.SubjectAlternativeNameExtension) {
      for (const n of ext.names.items) {
        if (n.type === "dns") dns.push(n.value);
        if (n.type === "ip") ips.push(n.value);
      }
    }
  }
  const issued = await buildLeaf({ ...opts, name, dns, ips }, spki);
  if (opts.outFile) {
    await writeAll([{ path: opts.outFile, data: `${issued.pem}\n` }], {
      force: opts.force ?? false,
    });
    issued.certPath = opts.outFile;
  }
  return issued;
}
