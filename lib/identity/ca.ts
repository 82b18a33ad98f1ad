/**
 * The realm certificate authority: create a CA (`initCa`) and load it back (`loadCa`) from its
 * directory (ca.pem, ca.key, crl.pem). It issues with issue.ts and revokes with crl.ts; nodes use
 * it for the dev realm (lib/node/credentials.ts), `macula certs` for real realms.
 * docs/certificates.md is the operator's guide.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { caRealmOf, parseCert } from "./certificates.ts";
import { IDENTITY_DEFAULTS } from "./defaults.ts";
import { CertsError, FileError } from "./errors.ts";
import { expiryWarnings } from "./expiry.ts";
import { readText, refuseExisting, writeAll } from "./files.ts";
import { createCaCertificate } from "./issuer.ts";
import { KEY_ALGORITHMS, type KeyType, keyTypeOf, spkiOf } from "./keys.ts";
import { checkRealm } from "./names.ts";
import { x509 } from "./x509.ts";

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
  const type = opts.keyType ?? IDENTITY_DEFAULTS.keyType;
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
  const { cert, keys } = await createCaCertificate({
    type,
    subject: `CN=Macula realm CA ${realm}, O=Macula`,
    realm,
    notBefore: new Date(now.getTime() - IDENTITY_DEFAULTS.realm.backdateMs),
    notAfter: new Date(now.getTime() + opts.durationMs),
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
  } catch (e) {
    throw new CertsError(
      encrypted
        ? `wrong passphrase for ${keyPath} (or the key file is damaged)`
        : `${keyPath} is not a readable PKCS#8 private key`,
      { cause: e },
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

function same(a: Uint8Array | ArrayBuffer, b: Uint8Array | ArrayBuffer): boolean {
  return Buffer.from(a as ArrayBuffer).equals(Buffer.from(b as ArrayBuffer));
}
