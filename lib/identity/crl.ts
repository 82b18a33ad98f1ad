/**
 * Revocation with the realm CA: `revoke` adds serials to the CA's CRL and writes it newly
 * signed (CRL number + 1, nextUpdate `IDENTITY_DEFAULTS.realm.crlLifetimeMs` ahead, capped at the
 * CA's expiry); `loadCrl` reads a CRL and checks it is the CA's; `crlNumber` reads its number.
 * Nodes read the same CRL with `Verifier.loadCrl` (verify.ts), which keeps it only when its number
 * is greater than the one held.
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

/** The cRLNumber extension (RFC 5280 5.2.3). */
export const CRL_NUMBER_OID = "2.5.29.20";

function derInteger(n: bigint): Uint8Array<ArrayBuffer> {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  const body = Buffer.from(hex, "hex");
  return new Uint8Array([0x02, body.length, ...body]);
}

/**
 * The CRL number (RFC 5280 5.2.3, the cRLNumber extension): a non-negative integer of at most 20
 * octets that the CA increases with every CRL it issues. Null when the CRL has none; throws
 * `RangeError` when the extension is not such an integer.
 */
export function crlNumber(crl: x509.X509Crl): bigint | null {
  const ext = crl.getExtension(CRL_NUMBER_OID);
  if (!ext) return null;
  const v = new Uint8Array(ext.value);
  if (v[0] !== 0x02 || v.length < 3) throw new RangeError("the CRL number is not an INTEGER");
  let len = v[1]!;
  let at = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 2) throw new RangeError("the CRL number has a bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | v[at + i]!;
    at += n;
  }
  if (len < 1 || at + len !== v.length) throw new RangeError("the CRL number has a bad length");
  if (len > 21 || (len === 21 && v[at] !== 0)) {
    throw new RangeError("the CRL number is longer than 20 octets (RFC 5280 5.2.3)");
  }
  if (v[at]! & 0x80) throw new RangeError("the CRL number is negative");
  return BigInt(`0x${Buffer.from(v.subarray(at, at + len)).toString("hex")}`);
}

/** The CRL number, 0 for a CRL without a (readable) one: what `revoke` counts on from. */
function crlNumberOf(crl: x509.X509Crl): bigint {
  try {
    return crlNumber(crl) ?? 0n;
  } catch {
    return 0n;
  }
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
