/**
 * The realm certificate authority: create and load a CA, issue and sign end-entity
 * certificates, and revoke them with a signed CRL. `macula certs` is a thin shell over this;
 * docs/certificates.md is the operator's guide.
 */
import {
  caExtensions,
  endEntityExtensions,
  generateKeyPair,
  KEY_ALGORITHMS,
  type KeyType,
  randomSerial,
} from "../lib/identity/profile.ts";
import { x509 } from "../lib/identity/x509.ts";
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { existsSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import {
  checkGroup,
  checkRealm,
  groupUri,
  nodeIdFromSpki,
  nodeIdText,
  nodeUri,
  parseMaculaUri,
} from "../lib/identity/names.ts";
import { formatDuration } from "./duration.ts";
import { FileError, readText, refuseExisting, writeAll } from "./files.ts";

/** Key algorithms: Ed25519 (default) or ECDSA P-256. */
export type { KeyType };

/** Warn when a certificate or CA is within this long of its expiry: 30 days. */
export const WARN_WITHIN_MS = 30 * 86_400_000;
/** Certificates start this long before the moment they are made, for clock skew: 5 minutes. */
export const BACKDATE_MS = 5 * 60_000;
/** Default lifetime of a CRL (its nextUpdate): 30 days, capped at the CA's expiry. */
export const CRL_DURATION_MS = 30 * 86_400_000;

/** A problem the operator can fix (bad input, wrong passphrase, CA exists…): one clear line. */
export class CertsError extends Error {
  override name = "CertsError";
}

/** File names inside a CA directory. */
export const CA_CERT_FILE = "ca.pem";
export const CA_KEY_FILE = "ca.key";
export const CRL_FILE = "crl.pem";

/** A loaded realm CA. */
export interface Ca {
  realm: string;
  type: KeyType;
  cert: x509.X509Certificate;
  /** The CA certificate, PEM. */
  pem: string;
  privateKey: CryptoKey;
  /** The directory it was loaded from or written to, if any. */
  dir?: string;
}

/** Serial numbers compare as numbers: lowercase hex without leading zeros. */
export function normalizeSerial(text: string): string {
  const t = text.trim().toLowerCase().replace(/^0x/, "").replace(/[:\s]/g, "");
  if (!/^[0-9a-f]{1,64}$/.test(t)) {
    throw new CertsError(`invalid serial number ${JSON.stringify(text)}: give it in hex`);
  }
  return BigInt(`0x${t}`).toString(16);
}

/** The key type of a DER SubjectPublicKeyInfo; throws for anything but Ed25519 and P-256. */
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

function spkiOf(key: KeyObject): Uint8Array<ArrayBuffer> {
  const pub = key.type === "public" ? key : createPublicKey(key);
  return Uint8Array.from(pub.export({ type: "spki", format: "der" }));
}

function same(a: Uint8Array | ArrayBuffer, b: Uint8Array | ArrayBuffer): boolean {
  return Buffer.from(a as ArrayBuffer).equals(Buffer.from(b as ArrayBuffer));
}

/** Parses a PEM (or DER) certificate, with a clear error naming `what`. */
export function parseCert(pem: string | Uint8Array, what = "certificate"): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem as string);
  } catch (e) {
    throw new CertsError(`${what} is not a readable X.509 certificate (${(e as Error).message})`);
  }
}

/** Expiry warnings (within 30 days, or already expired) for a labelled certificate. */
export function expiryWarnings(
  label: string,
  cert: x509.X509Certificate,
  now: Date = new Date(),
): string[] {
  const left = cert.notAfter.getTime() - now.getTime();
  if (left <= 0) {
    return [`warning: ${label} expired on ${cert.notAfter.toISOString()}`];
  }
  if (left <= WARN_WITHIN_MS) {
    return [
      `warning: ${label} expires in ${
        formatDuration(left)
      } (${cert.notAfter.toISOString()}); issue a new one`,
    ];
  }
  return [];
}

/** The realm a CA certificate names in its `macula://<realm>/ca` SAN, or null. */
export function caRealmOf(cert: x509.X509Certificate): string | null {
  for (const uri of sanUris(cert)) {
    const parsed = parseMaculaUri(uri);
    if (parsed?.kind === "ca") return parsed.realm;
  }
  return null;
}

/** The URI SANs of a certificate. */
export function sanUris(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.items.filter((n) => n.type === "url").map((n) => n.value) : [];
}

// ---------------------------------------------------------------------------------------------
// CA

/** Options for `initCa`. */
export interface InitCaOptions {
  realm: string;
  /** Directory for ca.pem and ca.key; when omitted nothing is written. */
  outDir?: string;
  durationMs: number;
  keyType?: KeyType;
  /** Encrypts ca.key (PKCS#8, AES-256-CBC) when given. */
  passphrase?: string;
  /** Replace an existing CA in `outDir`. */
  force?: boolean;
  /** The moment to start from (tests). */
  now?: Date;
}

/** What `initCa` made. */
export interface InitCaResult {
  ca: Ca;
  keyPem: string;
  certPath?: string;
  keyPath?: string;
  encrypted: boolean;
  warnings: string[];
}

/** Creates a self-signed realm CA and (with `outDir`) writes ca.pem and ca.key (mode 0600). */
export async function initCa(opts: InitCaOptions): Promise<InitCaResult> {
  const realm = checkRealm(opts.realm);
  const type = opts.keyType ?? "ed25519";
  if (!(type in KEY_ALGORITHMS)) throw new CertsError(`unknown key type ${JSON.stringify(type)}`);
  if (opts.passphrase !== undefined && opts.passphrase.length < 8) {
    throw new CertsError("the CA passphrase must be at least 8 characters");
  }
  const certPath = opts.outDir === undefined ? undefined : join(opts.outDir, CA_CERT_FILE);
  const keyPath = opts.outDir === undefined ? undefined : join(opts.outDir, CA_KEY_FILE);
  if (certPath && keyPath) {
    refuseExisting(
      [certPath, keyPath],
      opts.force ?? false,
      "a CA is already there; use --force to replace it",
    );
  }
  const now = opts.now ?? new Date();
  const keys = await generateKeyPair(type);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=Macula realm CA ${realm}, O=Macula`,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + opts.durationMs),
    keys,
    signingAlgorithm: KEY_ALGORITHMS[type].sign,
    extensions: await caExtensions(keys.publicKey, realm),
  });
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const keyPem = opts.passphrase === undefined
    ? x509.PemConverter.encode(der.buffer, "PRIVATE KEY")
    : (createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" }).export({
      type: "pkcs8",
      format: "pem",
      cipher: "aes-256-cbc",
      passphrase: opts.passphrase,
    }) as string);
  const pem = cert.toString("pem");
  if (certPath && keyPath) {
    await writeAll([
      { path: certPath, data: `${pem}\n` },
      { path: keyPath, data: keyPem.endsWith("\n") ? keyPem : `${keyPem}\n`, mode: 0o600 },
    ], { force: opts.force ?? false });
  }
  const ca: Ca = { realm, type, cert, pem, privateKey: keys.privateKey };
  if (opts.outDir !== undefined) ca.dir = opts.outDir;
  const result: InitCaResult = {
    ca,
    keyPem,
    encrypted: opts.passphrase !== undefined,
    warnings: expiryWarnings(`the CA for realm ${realm}`, cert, now),
  };
  if (certPath) result.certPath = certPath;
  if (keyPath) result.keyPath = keyPath;
  return result;
}

/** True when the CA key in `dir` is passphrase-encrypted (so `loadCa` needs the passphrase). */
export async function caKeyEncrypted(dir: string): Promise<boolean> {
  const text = await readText(join(dir, CA_KEY_FILE), "CA key");
  return text.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----");
}

/** Loads the CA in `dir` (ca.pem and ca.key), checking that the key belongs to the certificate. */
export async function loadCa(dir: string, passphrase?: string): Promise<Ca> {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  if (!existsSync(certPath) && !existsSync(keyPath)) {
    throw new FileError(
      `no CA in ${dir} (expected ${CA_CERT_FILE} and ${CA_KEY_FILE}; make one with 'macula certs ca init')`,
    );
  }
  const pemText = await readText(certPath, "CA certificate");
  const keyText = await readText(keyPath, "CA key");
  const cert = parseCert(pemText, `CA certificate ${certPath}`);
  const realm = caRealmOf(cert);
  if (realm === null) {
    throw new CertsError(`${certPath} is not a Macula realm CA (no macula://<realm>/ca SAN)`);
  }
  const encrypted = keyText.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----");
  if (encrypted && !passphrase) {
    throw new CertsError(`${keyPath} is encrypted: give the passphrase (MACULA_CA_PASSPHRASE)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(
      encrypted ? { key: keyText, format: "pem", passphrase: passphrase! } : keyText,
    );
  } catch {
    throw new CertsError(
      encrypted
        ? `wrong passphrase for ${keyPath} (or the key file is damaged)`
        : `${keyPath} is not a readable PKCS#8 private key`,
    );
  }
  if (!same(spkiOf(key), cert.publicKey.rawData)) {
    throw new CertsError(`${keyPath} does not belong to the certificate in ${certPath}`);
  }
  const type = keyTypeOf(key);
  const der = key.export({ type: "pkcs8", format: "der" });
  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    new Uint8Array(der),
    KEY_ALGORITHMS[type].gen as Algorithm,
    false,
    ["sign"],
  );
  return { realm, type, cert, pem: cert.toString("pem"), privateKey, dir };
}

// ---------------------------------------------------------------------------------------------
// End-entity certificates

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
  groups?: string[];
  dns?: string[];
  ips?: string[];
  durationMs: number;
  /** Start of validity; default five minutes before `now`. The end is start + duration. */
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
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** True when the requested lifetime was cut to the CA's expiry. */
  capped: boolean;
  certPath?: string;
  keyPath?: string;
  warnings: string[];
}

async function buildLeaf(opts: LeafOptions, spki: Uint8Array<ArrayBuffer>): Promise<Issued> {
  const { ca } = opts;
  const name = checkName(opts.name);
  const groups = [...new Set((opts.groups ?? []).map(checkGroup))];
  const dns = [...new Set((opts.dns ?? []).map(checkDns))];
  const ips = [...new Set((opts.ips ?? []).map(checkIp))];
  const now = opts.now ?? new Date();
  if (ca.cert.notAfter.getTime() <= now.getTime()) {
    throw new CertsError(
      `the CA for realm ${ca.realm} expired on ${ca.cert.notAfter.toISOString()}: make a new CA (see docs/certificates.md, rotation)`,
    );
  }
  const notBefore = opts.notBefore ?? new Date(now.getTime() - BACKDATE_MS);
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
  const nodeId = nodeIdText(nodeIdFromSpki(spki));
  const uri = nodeUri(ca.realm, nodeId);
  const names: x509.JsonGeneralNames = [
    { type: "url", value: uri },
    ...groups.map((g) => ({ type: "url" as const, value: groupUri(ca.realm, g) })),
    ...dns.map((value) => ({ type: "dns" as const, value })),
    ...ips.map((value) => ({ type: "ip" as const, value })),
  ];
  const serial = randomSerial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${name}`,
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: spki,
    signingKey: ca.privateKey,
    signingAlgorithm: KEY_ALGORITHMS[ca.type].sign,
    extensions: await endEntityExtensions(spki, ca.cert.publicKey, names),
  });
  const warnings = [
    ...expiryWarnings(`the CA for realm ${ca.realm}`, ca.cert, now),
    ...expiryWarnings(`certificate ${name}`, cert, now),
  ];
  return {
    pem: cert.toString("pem"),
    cert,
    nodeId,
    uri,
    realm: ca.realm,
    serial: normalizeSerial(cert.serialNumber),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    capped,
    warnings,
  };
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
  } catch {
    throw new CertsError(`${what} is not a readable PEM public key`);
  }
  if (key.type !== "public") throw new CertsError(`${what} is not a public key`);
  keyTypeOf(key);
  return spkiOf(key);
}

/** Options for `issueCert`. */
export interface IssueOptions extends LeafOptions {
  /** Sign this PEM public key instead of generating a key pair (the private key stays on its host). */
  publicKeyPem?: string;
  /** Directory for `<name>.crt` and `<name>.key` (mode 0600); nothing is written when omitted. */
  outDir?: string;
  force?: boolean;
}

/** Issues an end-entity certificate, with a new Ed25519 key unless `publicKeyPem` is given. */
export async function issueCert(opts: IssueOptions): Promise<Issued> {
  checkName(opts.name);
  const certPath = opts.outDir === undefined ? undefined : join(opts.outDir, `${opts.name}.crt`);
  const keyPath = opts.outDir === undefined || opts.publicKeyPem !== undefined
    ? undefined
    : join(opts.outDir, `${opts.name}.key`);
  refuseExisting([certPath, keyPath].filter((p) => p !== undefined), opts.force ?? false);
  let spki: Uint8Array<ArrayBuffer>;
  let keyPem: string | undefined;
  if (opts.publicKeyPem !== undefined) {
    spki = publicKeySpki(opts.publicKeyPem);
  } else {
    const keys = await generateKeyPair("ed25519");
    spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey)) as Uint8Array<
      ArrayBuffer
    >;
    const der = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
    keyPem = x509.PemConverter.encode(der, "PRIVATE KEY");
  }
  const issued = await buildLeaf(opts, spki);
  if (keyPem !== undefined) issued.keyPem = keyPem;
  if (certPath) {
    const files = [{ path: certPath, data: `${issued.pem}\n` }];
    if (keyPath && keyPem) files.push({ path: keyPath, data: `${keyPem}\n`, mode: 0o600 } as never);
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
  } catch {
    throw new CertsError("the request is not a readable PKCS#10 certificate request (PEM)");
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

// ---------------------------------------------------------------------------------------------
// Revocation

const CRL_NUMBER_OID = "2.5.29.20";

function derInteger(n: bigint): Uint8Array<ArrayBuffer> {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  const body = Buffer.from(hex, "hex");
  return new Uint8Array([0x02, body.length, ...body]);
}

function crlNumberOf(crl: x509.X509Crl): bigint {
  const ext = crl.getExtension(CRL_NUMBER_OID);
  if (!ext) return 0n;
  const v = new Uint8Array(ext.value);
  if (v[0] !== 0x02) return 0n;
  return BigInt(`0x${Buffer.from(v.subarray(2, 2 + v[1]!)).toString("hex") || "0"}`);
}

/** Parses a CRL and checks it was signed by `ca`; throws `CertsError` otherwise. */
export async function loadCrl(
  pem: string,
  caCert: x509.X509Certificate,
  what = "CRL",
): Promise<x509.X509Crl> {
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(pem);
  } catch {
    throw new CertsError(`${what} is not a readable X.509 CRL`);
  }
  let ok = false;
  try {
    ok = crl.issuerName.toString() === caCert.subjectName.toString() &&
      await crl.verify({ publicKey: caCert.publicKey });
  } catch {
    ok = false;
  }
  if (!ok) throw new CertsError(`${what} is not signed by this CA`);
  return crl;
}

/** Revocation reasons `revoke` records (any of them makes nodes reject the certificate). */
export const REVOKE_REASONS = [
  "keyCompromise",
  "affiliationChanged",
  "superseded",
  "cessationOfOperation",
] as const;
export type RevokeReason = (typeof REVOKE_REASONS)[number];

/** Options for `revoke`. */
export interface RevokeOptions {
  ca: Ca;
  /** Serial numbers (hex) to revoke. */
  serials?: string[];
  /** Certificates (PEM) to revoke; each must have been issued by `ca`. */
  certs?: string[];
  /** The CRL file: read when it exists (entries kept), then replaced. */
  crlPath: string;
  /** Reason recorded for the serials added now; default `cessationOfOperation`. */
  reason?: RevokeReason;
  /** Lifetime of the new CRL (nextUpdate); default 30 days, capped at the CA's expiry. */
  durationMs?: number;
  now?: Date;
}

/** What `revoke` wrote. */
export interface RevokeResult {
  crlPath: string;
  pem: string;
  /** CRL number of the new CRL. */
  number: string;
  /** Every revoked serial in the CRL. */
  revoked: string[];
  /** Serials this call added. */
  added: string[];
  nextUpdate: Date;
  warnings: string[];
}

/** Adds serials to the CA's CRL (creating it if needed) and writes a freshly signed CRL. */
export async function revoke(opts: RevokeOptions): Promise<RevokeResult> {
  const { ca } = opts;
  const now = opts.now ?? new Date();
  const wanted: string[] = (opts.serials ?? []).map(normalizeSerial);
  for (const [i, pem] of (opts.certs ?? []).entries()) {
    const cert = parseCert(pem, `certificate #${i + 1}`);
    let ours = false;
    try {
      ours = cert.issuerName.toString() === ca.cert.subjectName.toString() &&
        await cert.verify({ publicKey: ca.cert.publicKey, signatureOnly: true });
    } catch {
      ours = false;
    }
    if (!ours) {
      throw new CertsError(
        `certificate ${cert.subject} (serial ${
          normalizeSerial(cert.serialNumber)
        }) was not issued by this CA`,
      );
    }
    wanted.push(normalizeSerial(cert.serialNumber));
  }
  if (wanted.length === 0) throw new CertsError("nothing to revoke: give --serial or --cert");
  const entries = new Map<string, { date: Date; reason: x509.X509CrlReason }>();
  let number = 0n;
  if (existsSync(opts.crlPath)) {
    const old = await loadCrl(await readText(opts.crlPath, "CRL"), ca.cert, `CRL ${opts.crlPath}`);
    for (const e of old.entries) {
      entries.set(normalizeSerial(e.serialNumber), {
        date: e.revocationDate,
        reason: e.reason || x509.X509CrlReason.cessationOfOperation,
      });
    }
    number = crlNumberOf(old);
  }
  const added: string[] = [];
  for (const s of wanted) {
    if (!entries.has(s)) {
      entries.set(s, {
        date: now,
        reason: x509.X509CrlReason[opts.reason ?? "cessationOfOperation"],
      });
      added.push(s);
    }
  }
  const next = new Date(
    Math.min(now.getTime() + (opts.durationMs ?? CRL_DURATION_MS), ca.cert.notAfter.getTime()),
  );
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subjectName,
    thisUpdate: now,
    nextUpdate: next,
    signingKey: ca.privateKey,
    signingAlgorithm: KEY_ALGORITHMS[ca.type].sign,
    entries: [...entries].map(([s, e]) => ({
      serialNumber: s.length % 2 ? `0${s}` : s,
      revocationDate: e.date,
      // Always a (non-zero) reason: @peculiar/x509 2.2 writes an empty, invalid
      // crlEntryExtensions SEQUENCE for an entry without extensions, which OpenSSL rejects.
      reason: e.reason,
    })),
    extensions: [
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
      new x509.Extension(CRL_NUMBER_OID, false, derInteger(number + 1n)),
    ],
  });
  // "X509 CRL" is the PEM label OpenSSL and others expect (@peculiar/x509 writes "CRL").
  const pem = x509.PemConverter.encode(crl.rawData, "X509 CRL");
  await writeAll([{ path: opts.crlPath, data: `${pem}\n` }], { force: true });
  return {
    crlPath: opts.crlPath,
    pem,
    number: String(number + 1n),
    revoked: [...entries.keys()],
    added,
    nextUpdate: next,
    warnings: expiryWarnings(`the CA for realm ${ca.realm}`, ca.cert, now),
  };
}
