/**
 * Revocation with the realm CA: `revoke` adds serials to the CA's CRL and writes it newly
 * signed (CRL number + 1, nextUpdate `IDENTITY_DEFAULTS.realm.crlLifetimeMs` ahead, capped at the
 * CA's expiry); `loadCrl` reads a CRL and checks it is the CA's. Nodes read the same CRL with
 * `Verifier.loadCrl` (verify.ts).
 */
import { existsSync } from "node:fs";
import type { Ca } from "./ca.ts";
import { normalizeSerial, parseCert } from "./certificates.ts";
import { IDENTITY_DEFAULTS } from "./defaults.ts";
import { CertsError } from "./errors.ts";
import { expiryWarnings } from "./expiry.ts";
import { readText, writeAll } from "./files.ts";
import { KEY_ALGORITHMS } from "./keys.ts";
import { x509 } from "./x509.ts";

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
  } catch (e) {
    throw new CertsError(`${what} is not a readable X.509 CRL`, { cause: e });
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
    Math.min(
      now.getTime() + (opts.durationMs ?? IDENTITY_DEFAULTS.realm.crlLifetimeMs),
      ca.cert.notAfter.getTime(),
    ),
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
